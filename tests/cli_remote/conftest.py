"""A sandbox instance launched with the real CLI, and a profile that points Jupyter at the venv's jupyter
(`setup.env_path` = the venv: `<env_path>/bin/jupyter` is what the app runs). Module scoped: one instance and one
set of XDG dirs per module; each test points the environment at them.
"""

from __future__ import annotations

import io
import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tui.__main__ import main
from tui.sandbox.sshhost import free_port

VENV = Path(sys.executable).parent.parent


@dataclass
class CliWorld:
    base: Path
    sandbox: Any
    name: str
    iid: str
    env: dict[str, str]

    def files_containing(self, secret: str) -> list[Path]:
        return [p for p in self.base.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]

    def runtime_token(self) -> str:
        """The token Jupyter wrote into its runtime file on the VM (the sandbox VM's disk is local)."""
        home = self.sandbox.ssh_host(self.iid).home
        infos = [json.loads(f.read_text()) for f in (home / ".local/share/jupyter/runtime").glob("jpserver-*.json")]
        # a server ended with its VM (a stop, a reboot: other tests of the module) leaves its file behind
        live = [info for info in infos if _alive(int(info["pid"]))]
        assert len(live) == 1, infos
        return str(live[0]["token"])


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (the sandbox's VMs are processes of this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="module")
def cli_world(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliWorld]:
    base = tmp_path_factory.mktemp("cli-remote")
    config = base / "config.yaml"
    config.write_text(
        f"cloud: sandbox\nclouds_yaml: {sandbox.clouds_yaml}\nssh:\n  use_ssh_config: false\n"
        f"setup:\n  env_path: {VENV}\njupyter:\n  port: {free_port()}\n  local_port: 0\n"
    )
    env = {var: str(base / var.lower()) for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")}
    env |= {"CADES_TUI_CONFIG": str(config), "OS_CLIENT_CONFIG_FILE": str(sandbox.clouds_yaml), "OS_CLOUD": "sandbox"}
    name = f"cli-{uuid.uuid4().hex[:6]}"
    with pytest.MonkeyPatch.context() as mp:
        for var, value in env.items():
            mp.setenv(var, value)
        out = io.StringIO()
        with redirect_stdout(out):
            assert main(["launch", name, "--wait", "--json"]) == 0
        iid = json.loads(out.getvalue())["id"]
        try:
            yield CliWorld(base, sandbox, name, iid, env)
        finally:
            with redirect_stdout(io.StringIO()):
                main(["delete", name, "--yes", "--delete-volumes"])  # also ends the VM's processes


@pytest.fixture
def cli(cli_world: CliWorld, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[str, str]]:
    """Run `cades-tui ARGS` in-process; returns (stdout, stderr) after checking the exit code."""
    for var, value in cli_world.env.items():
        monkeypatch.setenv(var, value)

    def run(*args: str, expect: int = 0) -> tuple[str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        assert code == expect, f"exit {code} != {expect}\nstdout: {out}\nstderr: {err}"
        return out, err

    return run


@pytest.fixture
def subprocess_env(cli_world: CliWorld) -> dict[str, str]:
    return {**os.environ, **cli_world.env}


@pytest.fixture
def jupyter_running(cli: Callable[..., tuple[str, str]], cli_world: CliWorld) -> None:
    """Jupyter runs on the module's VM, whatever ran before (tests run in any order): started, or adopted."""
    cli("jupyter", "start", cli_world.name)


class Foreground:
    """`python -m tui ARGS` in the background: stdout read as lines when asked (no reader thread: the test may
    close its end of the pipe at any time), stderr to a file. `close()` (in the fixture's finally) kills what is
    left."""

    def __init__(self, args: list[str], env: dict[str, str], stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        self._err = stderr_path.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "tui", *args], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self._err)
        assert self.proc.stdout is not None
        self._fd = self.proc.stdout.fileno()
        self._partial = b""
        self.seen: list[str] = []

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def _read(self, timeout: float) -> bool:
        """Read what stdout has within `timeout`; False at its end."""
        if not select.select([self._fd], [], [], timeout)[0]:
            return True
        chunk = os.read(self._fd, 65536)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        self.seen += [line.decode() for line in lines]
        return bool(chunk)

    def wait_for(self, text: str, timeout: float = 90) -> list[str]:
        """Stdout lines until one contains `text`; fails at once (with stderr) if the process ends first."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.seen):
            if not self._read(0.2) or time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} (exit {self.proc.poll()}): {self.seen}\n{self.stderr}")
        return self.seen

    def close_stdout(self) -> None:
        """Our end of the pipe goes away, as `sed` does on Ctrl+C in `cades-tui open NAME | sed ...`."""
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def stop(self, signum: int = signal.SIGINT, timeout: float = 30) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=timeout)

    def rest(self) -> list[str]:
        """Every stdout line, once the process has ended."""
        assert self.proc.stdout is not None
        while not self.proc.stdout.closed and self._read(5):
            pass
        return self.seen

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._err.close()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def foreground(subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Foreground]]:
    """`foreground(*args, env=...)`: start a command that runs until signalled; killed after the test."""
    started: list[Foreground] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Foreground:
        fg = Foreground(list(args), {**subprocess_env, **(env or {})}, tmp_path / f"stderr-{len(started)}")
        started.append(fg)
        return fg

    try:
        yield start
    finally:
        for fg in started:
            fg.close()
