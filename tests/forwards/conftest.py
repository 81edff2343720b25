"""A sandbox instance launched with the real CLI (the fixtures of tests/cli_remote), and a web server on it:
`python3 -m http.server` started on the VM over SSH, killed in the fixture's finally."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.cli_remote import conftest as remote
from tests.cli_remote.conftest import CliWorld
from tui.sandbox.sshhost import free_port

# the module's VM, the in-process CLI and the foreground commands of tests/cli_remote
cli_world, cli, subprocess_env, foreground = remote.cli_world, remote.cli, remote.subprocess_env, remote.foreground


@dataclass(frozen=True)
class WebServer:
    port: int
    pid: int


def on_vm(env: dict[str, str], name: str, command: str) -> str:
    """Run `command` on the VM with `cades-tui ssh NAME -- COMMAND`; its stdout."""
    done = subprocess.run([sys.executable, "-m", "tui", "ssh", name, "--", command], env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def web(cli_world: CliWorld, subprocess_env: dict[str, str]) -> Iterator[WebServer]:
    """`python3 -m http.server PORT --bind 127.0.0.1` on the VM (in its home, an index.html there)."""
    port = free_port()
    out = on_vm(subprocess_env, cli_world.name,
                f"echo forwarded-page > index.html; nohup python3 -m http.server {port} --bind 127.0.0.1 "
                ">/dev/null 2>&1 </dev/null & echo $!")
    pid = int(out.split()[-1])
    try:
        yield WebServer(port, pid)
    finally:
        on_vm(subprocess_env, cli_world.name, f"kill {pid} 2>/dev/null; true")
