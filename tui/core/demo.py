"""`--demo`: run against the embedded sandbox cloud, kept under the app's state dir.

One process owns the sandbox (it holds an exclusive lock on the state dir); a second `cades-tui --demo ...`
started meanwhile (say `cades-tui --demo list` in another terminal) talks to the running one instead of
starting another.

The core never imports the sandbox (an import-linter contract): the entry room hands `LazyDemo` / `start_demo` a
`StartSandbox` (`tui.startup.start_sandbox`) that builds and starts it; this module keeps the owner's lock, the demo
key and the stop.

On Windows the sandbox's cloud runs as anywhere, but its SSH VMs need a Linux-like host (sshd, screen): `host_note`
says so in one line (WSL works).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from tui.core import paths, platform


def host_note() -> str | None:
    """One line for the user when this machine cannot host the demo's SSH VMs (Windows: WSL can); else None."""
    if sys.platform == "win32":
        return platform.WSL_NOTE
    return None


def demo_state_dir() -> Path:
    return Path(os.environ.get("CADES_TUI_SANDBOX_DIR") or paths.state_dir() / "sandbox")


class DemoCloud(Protocol):
    """What the demo uses of a started sandbox (`tui.sandbox.Sandbox`)."""

    clouds_yaml: Path
    demo_key_path: Path

    def stop(self, power_off: bool = True) -> None: ...


StartSandbox = Callable[[Path], DemoCloud]  # (its state dir) -> the sandbox, seeded with the demo and started


@dataclass
class Demo:
    clouds_yaml: Path
    sandbox: DemoCloud | None  # the sandbox when this process owns it, else None (another process serves it)
    lock: IO[str] | None

    def stop(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop(power_off=False)  # VMs keep running, like a real cloud's
        if self.lock is not None:
            self.lock.close()


class DemoStopped(RuntimeError):
    """The demo was stopped (the app is quitting): it does not start again."""


class LazyDemo:
    """Starts the sandbox on first use, from whichever thread asks first (the app asks from a worker, after its
    first frame, so the sandbox's start never delays the first frame). Once stopped it stays stopped: a worker
    still on its way when the app quits (a signal) starts no SSH host behind the app's back."""

    def __init__(self, start_sandbox: StartSandbox, state_dir: Path | None = None) -> None:
        self._start_sandbox = start_sandbox
        self.state_dir = state_dir or demo_state_dir()
        self.clouds_yaml = self.state_dir / "clouds.yaml"
        self._demo: Demo | None = None
        self._stopped = False
        self._lock = threading.Lock()

    def ensure(self) -> Demo:
        with self._lock:
            if self._stopped:
                raise DemoStopped("the demo cloud was stopped: cades-tui is quitting")
            if self._demo is None:
                self._demo = start_demo(self._start_sandbox, self.state_dir)
            return self._demo

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._demo is not None:
                self._demo.stop()
                self._demo = None


def adopt_demo_key(private: Path) -> None:
    """Put the demo key pair's private key in the app's key store (mode 0600), as a user would after
    downloading it from Horizon — so the demo's ready-made instance is reachable like any other."""
    from tui.conventions import DEMO_KEY
    from tui.core.keys import KeyStore, write_private

    store = KeyStore()
    target = store.private_path(DEMO_KEY)
    if private.exists() and not target.exists():
        paths.ensure_private_dir(store.keys_dir)
        write_private(target, private.read_bytes())


def start_demo(start_sandbox: StartSandbox, state_dir: Path | None = None) -> Demo:
    """The demo's cloud: started with `start_sandbox` when this process takes the owner's lock, else the running
    one's clouds.yaml."""
    root = paths.ensure_private_dir(state_dir or demo_state_dir())
    lock = (root / "owner.lock").open("a+")
    if not platform.try_lock(lock):
        lock.close()
        clouds = root / "clouds.yaml"
        return Demo(clouds_yaml=clouds, sandbox=None, lock=None)
    sandbox = start_sandbox(root)
    adopt_demo_key(Path(sandbox.demo_key_path))
    return Demo(clouds_yaml=sandbox.clouds_yaml, sandbox=sandbox, lock=lock)
