"""Pilot-test fixtures: a private sandbox cloud per test and the real app around the real OpenStackCloud."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from textual.css.query import NoMatches
from textual.message import Message
from textual.notifications import Notification, Notify
from textual.pilot import Pilot

from tests._support import running_sandbox
from tui.core.cloud.base import LaunchSpec
from tui.core.cloud.openstack_cloud import OpenStackCloud
from tui.core.config import Settings, UISettings
from tui.core.engine import engine_factory
from tui.core.models import Instance
from tui.ui.app import CadesApp

# A fixed moment for humanize in snapshots: "now" is this long after the first instance's launch.
UPTIME = timedelta(hours=3, minutes=7)


@pytest.fixture(autouse=True)
def _quick_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox runs with Delays.fast(): let the cloud facade's wait loops poll it often too."""
    monkeypatch.setattr("tui.core.cloud.openstack_cloud.POLL_S", 0.1)


@pytest.fixture
def sb(tmp_path: Path) -> Iterator[Any]:
    with running_sandbox(tmp_path / "sandbox", seed_demo=False) as sandbox:
        yield sandbox


@pytest.fixture
def cloud(sb: Any) -> OpenStackCloud:
    """A second client of the same sandbox: to set the scene and to check what the app did."""
    return OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sb.clouds_yaml)


def settings_for(sb: Any, **changes: Any) -> Settings:
    return replace(Settings(cloud="sandbox", clouds_yaml=str(sb.clouds_yaml), ui=UISettings(refresh_s=0.5)),
                   **changes)


def app_factory(sb: Any) -> Callable[..., CadesApp]:
    def make(clock: Callable[[], datetime] | None = None, **changes: Any) -> CadesApp:
        settings = settings_for(sb, **changes)
        return CadesApp(settings, engine_factory(
            settings, lambda: OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sb.clouds_yaml)), clock=clock)

    return make


@pytest.fixture(scope="module")
def scene_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, OpenStackCloud]]:
    """One sandbox per snapshot module (its scenes are read-only), and a cloud connection to it."""
    with running_sandbox(tmp_path_factory.mktemp("scene"), seed_demo=False) as sandbox:
        yield sandbox, OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sandbox.clouds_yaml)


@pytest.fixture
def make_app(sb: Any) -> Callable[..., CadesApp]:
    return app_factory(sb)


def launch(cloud: OpenStackCloud, name: str, flavor: str = "m1.tiny") -> Instance:
    """Launch through the real API (scene setting), with the sandbox's defaults."""
    images = cloud.list_images()
    networks = [n for n in cloud.list_networks() if not n.external]
    keypairs = cloud.list_keypairs()
    if not keypairs:
        import asyncssh

        pub = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
        keypairs = [cloud.import_keypair("ui-key", pub)]
    ubuntu = max((i for i in images if "24.04" in i.name), key=lambda i: i.name)
    spec = LaunchSpec(name=name, image=ubuntu.id, flavor=flavor, key_name=keypairs[0].name,
                      network=networks[0].id, volume_size_gb=16)
    return cloud.launch(spec, wait=True)


def frozen_after(instance: Instance) -> Callable[[], datetime]:
    base = instance.launched_at or datetime(2026, 1, 1, tzinfo=UTC)
    return lambda: base + UPTIME


async def wait_for(pilot: Pilot[Any], condition: Callable[[], Any], timeout: float = 15.0) -> None:
    """Let the app run until `condition()` is true; fail with a clear message after `timeout` seconds.
    A widget not mounted yet (the tables mount right after the first frame) counts as "not yet"."""
    deadline = time.monotonic() + timeout

    def holds() -> bool:
        try:
            return bool(condition())
        except NoMatches:
            return False

    while not holds():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {condition.__doc__ or condition}")
        await pilot.pause(0.05)


async def screen(pilot: Pilot[Any], kind: type, timeout: float = 15.0) -> Any:
    """Wait until a screen of `kind` is on top and mounted; return it."""
    app = pilot.app

    def on_top() -> bool:
        """the screen to open"""
        return isinstance(app.screen, kind) and app.screen.is_mounted and bool(app.screen.children)

    await wait_for(pilot, on_top, timeout)
    await pilot.pause()
    return app.screen


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking cloud call without stalling the app under test."""
    return await asyncio.to_thread(fn, *args, **kwargs)


class Watch:
    """What the app dispatched, as the user would learn it: pass `watch.hook` as `run_test(message_hook=...)`.
    `notes()` are the notifications (title and message, as their toasts show them); `of("Polled")` the messages of
    a class (core events arrive as message classes named after them)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def hook(self, message: Message) -> None:
        self.messages.append(message)

    def of(self, name: str) -> list[Any]:
        """The messages of class `name`; a core event's by its event's name ("Polled": `PolledMessage`)."""
        return [m for m in self.messages if type(m).__name__ in (name, f"{name}Message")]

    def notifications(self) -> list[Notification]:
        return [m.notification for m in self.messages if isinstance(m, Notify)]

    def notes(self, severity: str | None = None) -> list[str]:
        return [f"{n.title}\n{n.message}" if n.title else n.message for n in self.notifications()
                if severity is None or n.severity == severity]


@pytest.fixture
def ui() -> SimpleNamespace:
    """The helpers above, for test modules (importlib mode: they cannot import conftest)."""
    return SimpleNamespace(launch=launch, frozen_after=frozen_after, wait_for=wait_for, screen=screen,
                           in_thread=in_thread, settings_for=settings_for, app_factory=app_factory, Watch=Watch)
