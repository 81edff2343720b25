"""`e` in the app: the selected instance in VS Code. A FAKE `code` script on PATH (the one edge this machine cannot
reach: VS Code itself) records its argv; without it the app shows the command. The rest is real: the sandbox's
sshd, the app's login (host key pinned), the generated config, the Include line after the user said yes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.notifications import Notify
from textual.widgets import Button

from tests._support import running_sandbox
from tui.core.cloud.base import LaunchSpec
from tui.core.cloud.openstack_cloud import OpenStackCloud
from tui.core.config import Settings, SSHSettings, UISettings
from tui.core.engine import engine_factory
from tui.core.services import launch_instance
from tui.ui.app import CadesApp
from tui.ui.screens.confirm import Confirm
from tui.ui.widgets.tables import InstancesTable

FAKE_CODE = """#!/bin/sh
# A FAKE `code` (VS Code's CLI) for tests: records its arguments, one per line, and exits.
printf '%s\\n' "$@" > "{out}"
"""


@pytest.fixture
def sb(tmp_path: Path) -> Iterator[Any]:
    with running_sandbox(tmp_path / "sandbox", seed_demo=False) as sandbox:
        yield sandbox


@pytest.fixture
def fake_code(tmp_path: Path) -> tuple[Path, Path]:
    """A folder holding the fake `code`, and the file it writes its argv to."""
    folder, out = tmp_path / "fake-vscode-bin", tmp_path / "fake-code-argv"
    folder.mkdir()
    script = folder / "code"
    script.write_text(FAKE_CODE.format(out=out))
    script.chmod(0o755)
    return folder, out


def path_without_code() -> str:
    return os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and not (Path(d) / "code").exists())


async def wait(pilot: Any, condition: Any, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out: {condition.__doc__ or condition}"
        await pilot.pause(0.05)


async def test_e_opens_vscode_by_name_or_shows_the_command(sb: Any, fake_code: tuple[Path, Path],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    cloud = OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sb.clouds_yaml)
    image = max((i for i in cloud.list_images() if "24.04" in i.name), key=lambda i: i.name)
    network = next(n for n in cloud.list_networks() if not n.external)
    inst = launch_instance(cloud, LaunchSpec(name="vsc1", image=image.id, flavor="m1.small", key_name="",
                                             network=network.id, volume_size_gb=16), lambda _: None)
    home = sb.ssh_host(inst.id).home
    settings = Settings(cloud="sandbox", clouds_yaml=str(sb.clouds_yaml), ui=UISettings(refresh_s=0.5),
                        ssh=SSHSettings(use_ssh_config=False))
    app = CadesApp(settings, engine_factory(
        settings, lambda: OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sb.clouds_yaml)))
    folder, argv_file = fake_code
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{path_without_code()}")
    notes: list[str] = []

    def hook(message: Any) -> None:
        if isinstance(message, Notify):
            notes.append(message.notification.message)

    ssh_config = Path.home() / ".ssh" / "config"
    async with app.run_test(size=(120, 40), notifications=True, message_hook=hook) as pilot:
        await wait(pilot, lambda: bool(app.query_one(InstancesTable).instances) and app.engine is not None)
        await pilot.press("e")
        await wait(pilot, lambda: isinstance(app.screen, Confirm) and app.screen.is_mounted)
        assert "Include ~/.ssh/cades-tui/*.config" in str(app.screen.body)
        assert not ssh_config.exists()  # asked before anything is written into ~/.ssh/config
        app.screen.query_one("#confirm", Button).press()
        await wait(pilot, argv_file.exists)
        assert argv_file.read_text().splitlines() == ["--remote", "ssh-remote+vsc1", f"{home}/workspace"]
        assert ssh_config.read_text().splitlines()[0] == "Include ~/.ssh/cades-tui/*.config"
        assert "Host vsc1" in (Path.home() / ".ssh" / "cades-tui" / "sandbox.config").read_text()

        # without `code` on PATH: the command is shown (and copied), nothing is run
        argv_file.unlink()
        monkeypatch.setenv("PATH", path_without_code())
        await pilot.press("e")
        await wait(pilot, lambda: any("not on PATH" in n for n in notes))
        note = next(n for n in notes if "not on PATH" in n)
        assert f"code --remote ssh-remote+vsc1 {home}/workspace" in note
        assert app.clipboard == f"code --remote ssh-remote+vsc1 {home}/workspace"
        assert not argv_file.exists()
    cloud.delete(inst.id, delete_volumes=True)


async def test_without_the_include_the_hint_is_shown(sb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Declining the Include line: nothing is added to ~/.ssh/config; the command and the ssh-config hint are said."""
    cloud = OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sb.clouds_yaml)
    image = max((i for i in cloud.list_images() if "24.04" in i.name), key=lambda i: i.name)
    network = next(n for n in cloud.list_networks() if not n.external)
    inst = launch_instance(cloud, LaunchSpec(name="vsc2", image=image.id, flavor="m1.small", key_name="",
                                             network=network.id, volume_size_gb=16), lambda _: None)
    settings = Settings(cloud="sandbox", clouds_yaml=str(sb.clouds_yaml), ui=UISettings(refresh_s=0.5),
                        ssh=SSHSettings(use_ssh_config=False))
    app = CadesApp(settings, engine_factory(
        settings, lambda: OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sb.clouds_yaml)))
    monkeypatch.setenv("PATH", path_without_code())
    notes: list[str] = []

    def hook(message: Any) -> None:
        if isinstance(message, Notify):
            notes.append(message.notification.message)

    async with app.run_test(size=(120, 40), notifications=True, message_hook=hook) as pilot:
        await wait(pilot, lambda: bool(app.query_one(InstancesTable).instances) and app.engine is not None)
        await pilot.press("e")
        await wait(pilot, lambda: isinstance(app.screen, Confirm) and app.screen.is_mounted)
        await pilot.press("escape")
        await wait(pilot, lambda: any("ssh-config --install" in n for n in notes))
        note = next(n for n in notes if "ssh-config --install" in n)
        assert "cades-tui ssh-config --install" in note and "code --remote ssh-remote+vsc2 " in note
        assert not (Path.home() / ".ssh" / "config").exists()
    cloud.delete(inst.id, delete_volumes=True)
