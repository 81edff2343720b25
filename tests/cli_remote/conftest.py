"""A sandbox instance launched with the real CLI, and a profile that points Jupyter at the venv's jupyter
(`setup.env_path` = the venv: `<env_path>/bin/jupyter` is what the app runs). Module scoped: one instance and one
set of XDG dirs per module; each test points the environment at them.
"""

from __future__ import annotations

import io
import json
import os
import sys
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
        files = list((home / ".local/share/jupyter/runtime").glob("jpserver-*.json"))
        assert len(files) == 1, files
        return str(json.loads(files[0].read_text())["token"])


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
