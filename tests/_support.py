"""Helpers shared by several test areas (import them: `from tests._support import ...`; fixtures stay in conftests).

- `running_sandbox(base, **options)`: a sandbox cloud with fast delays for a `with` block, stopped at its end.
- `sandbox_settings`, `sandbox_services`, `launch`, `JUPYTER`: the app's settings and services against a sandbox,
  and an instance launched the way `cades-tui launch NAME --wait` does.
- `Events`: records what an engine or a manager emits; `eventually`: polls a condition on the event loop (and
  `wait_until` where there is no event loop); `never`:
  that a condition stays false for a while (what a test says must NOT happen, waited for rather than slept over).
- `starts_something(source)`: whether test code starts a process, an SSH host or a sandbox (the fast tier's rule,
  applied by tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import pytest

    from tui.core.cloud.base import Cloud
    from tui.core.config import Settings
    from tui.core.events import Event
    from tui.core.keys import KeyStore
    from tui.core.models import Instance
    from tui.core.services import Services
    from tui.sandbox import Sandbox

TESTS = Path(__file__).resolve().parent
JUPYTER = str(Path(sys.executable).parent / "jupyter")  # the venv's, standing in for ~/jupyter-env
E = TypeVar("E")

# What starts a process, an SSH host or a sandbox cloud when test code names it: the sandbox and its VMs, any
# subprocess (`python -m tui` included), a fork or exec, an SSH server or connection, the app's `--demo` cloud.
STARTS = re.compile(
    r"\b(?:Sandbox|SSHHost|running_sandbox|AsyncSSHServer|Popen|create_subprocess_\w+|start_demo|LazyDemo|RealCloud)\("
    r"|--demo\b"
    r"|\bsubprocess\b|\bpexpect\b|\bos\.(?:fork|exec\w*|spawn\w*|system|popen)\b|\bpty\.(?:fork|spawn)\b"
    r"|\basyncssh\.(?:connect|listen|create_server|create_connection)\b"
)


def starts_something(source: str) -> bool:
    """Whether this test code (a test module, or a fixture function) starts a process, an SSH host or a sandbox:
    tests/conftest.py puts a test in the fast tier only when neither its module nor any fixture it uses (defined
    under tests/) does."""
    return STARTS.search(source) is not None


@functools.cache
def _file_starts(path: Path) -> bool:
    return starts_something(path.read_text())


@functools.cache
def _fixture_starts(func: Callable[..., Any]) -> bool:
    """Whether a fixture defined under tests/ starts something (plugins' fixtures, tmp_path & co., do not)."""
    func = inspect.unwrap(func)  # pytest-asyncio wraps async fixtures
    try:
        path = Path(inspect.getfile(func)).resolve()
    except TypeError:
        return False
    return path.is_relative_to(TESTS) and starts_something(inspect.getsource(func))


def is_fast(item: pytest.Item) -> bool:
    """The fast tier's rule: a test function not marked `slow` whose module starts nothing, nor any fixture it
    uses, directly or through the fixtures those use (`item.fixturenames` is that whole closure)."""
    import pytest

    if not isinstance(item, pytest.Function) or item.get_closest_marker("slow") is not None:
        return False
    if _file_starts(item.path.resolve()):
        return False
    defs = item._fixtureinfo.name2fixturedefs
    return not any(_fixture_starts(d.func) for name in item.fixturenames for d in defs.get(name, ()))


@contextmanager
def running_sandbox(base: Path, **options: Any) -> Iterator[Sandbox]:
    """A sandbox cloud under `base` with `Delays.fast()` (`options` go to `Sandbox`); stopped when the block ends,
    however it ends."""
    from tui.sandbox import Delays, Sandbox

    sandbox = Sandbox(base, delays=Delays.fast(), **options)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def sandbox_settings(sandbox: Any) -> Settings:
    """The app's settings for `sandbox`: no ~/.ssh/config, Jupyter on a free port, tunnels on any local port."""
    from tui.core.config import JupyterSettings, Settings, SSHSettings
    from tui.sandbox.sshhost import free_port

    return Settings(cloud="sandbox", clouds_yaml=str(sandbox.clouds_yaml), ssh=SSHSettings(use_ssh_config=False),
                    jupyter=JupyterSettings(port=free_port(), local_port=0))


def sandbox_services(settings: Settings, app_data: Path, state_dir: Path) -> Services:
    """Services with the app's key store in `app_data` (and its known_hosts there) and its state in `state_dir`."""
    from tui.core.keys import KeyStore
    from tui.core.services import Services

    return Services(settings, KeyStore(app_data), state_dir, app_data / "known_hosts")


def launch(cloud: Cloud, name: str, keystore: KeyStore) -> Instance:
    """What `cades-tui launch NAME --wait` does: the guide's plan (newest Ubuntu, a fitting flavor), the app's own
    key pair, an SSH rule; waits until ACTIVE."""
    from tui.core.cloud.launch import plan_launch
    from tui.core.services import launch_instance

    plan = plan_launch(name, flavors=cloud.list_flavors(), images=cloud.list_images(),
                       networks=cloud.list_networks(), quota=cloud.get_quota(), key_name="")
    inst = launch_instance(cloud, plan.spec, lambda _line: None, keystore, wait=True)
    assert inst.status == "ACTIVE", inst
    return inst


@dataclass
class Events:
    """What an engine or a manager emitted, in order (from any thread); `wait` polls for one that matches."""

    items: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.items.append(event)

    def of(self, kind: type[E], since: int = 0) -> list[E]:
        return [e for e in self.items[since:] if isinstance(e, kind)]

    def mark(self) -> int:
        """The position to pass as `since` to see only what comes next."""
        return len(self.items)

    async def wait(
        self, kind: type[E], pred: Callable[[E], bool] = lambda e: True, timeout: float = 10.0, since: int = 0
    ) -> E:
        """The first event of `kind` matching `pred` among those emitted after the first `since`."""

        async def poll() -> E:
            while True:
                for e in self.items[since:]:
                    if isinstance(e, kind) and pred(e):
                        return e
                await asyncio.sleep(0.02)

        return await asyncio.wait_for(poll(), timeout)


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Whether `check()` holds within `timeout` seconds (polled every 20 ms, the event loop running meanwhile)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def wait_until(check: Callable[[], bool], timeout: float = 10.0, what: str = "the condition") -> None:
    """`check()` holds within `timeout` seconds (polled every 20 ms), else AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.02)


async def never(check: Callable[[], bool], within: float) -> bool:
    """Whether `check()` stays false for `within` seconds — the window in which what must not happen would have
    happened (ends at once, False, when it does)."""
    return not await eventually(check, within)
