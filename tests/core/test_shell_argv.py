"""CoreEngine.shell.argv — what `ctrl+s` runs with the app suspended — on a sandbox instance (real sshd): OpenSSH's
argv where `ssh` is on PATH; without it, the built-in client in a child process (`python -m tui ssh ID` with the
app's profile and cloud), which the test then runs for real with a PATH that has no `ssh`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tui.core.remote.interactive import NOT_FOUND

from .conftest import Cloudy, Events

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_shell_argv_falls_back_to_the_builtin_client_without_ssh(cloudy: Cloudy, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    profile = tmp_path / "config.yaml"
    profile.write_text(f"cloud: sandbox\nclouds_yaml: {cloudy.sandbox.clouds_yaml}\nssh:\n  use_ssh_config: false\n")
    engine = cloudy.engine(Events())
    engine.shell.settings = replace(engine.settings, source=str(profile))  # as read from --config PATH
    try:
        if shutil.which("ssh"):
            argv = await engine.shell.argv(cloudy.a)
            assert argv[0] == "ssh" and "-t" in argv and "StrictHostKeyChecking=yes" in argv
        bare = str(Path(sys.executable).parent)  # the venv's bin: python, no ssh
        monkeypatch.setenv("PATH", bare)
        argv = await engine.shell.argv(cloudy.a)  # the host key is settled first, as for OpenSSH
    finally:
        await engine.aclose()
    assert argv == [sys.executable, "-m", "tui", "ssh", cloudy.a.id, "--config", str(profile), "--cloud", "sandbox"]
    # the child reaches the same instance with the same keys and known_hosts (found through the environment)
    env = {**os.environ, "PATH": bare, "XDG_DATA_HOME": str(cloudy.base / "data"),
           "XDG_STATE_HOME": str(cloudy.base / "state")}
    r = subprocess.run(argv, env=env, input="echo child-shell; exit 6\n", capture_output=True, text=True, timeout=120)
    assert r.returncode == 6, r.stderr
    assert "child-shell" in r.stdout and NOT_FOUND in r.stderr
