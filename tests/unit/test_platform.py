"""What differs per platform (tui.core.platform, tui.core.paths): locks, signals, private files, the tunnel's data
path, where files live — and that every module imports where fcntl and termios do not exist.

The Windows branches cannot run here; `mypy --platform win32 tui` (tests/run.sh) checks them, and what can be
checked of them on Linux (the icacls command line, Windows' folders' mapping) is checked below.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tui.core import paths, platform
from tui.core.keys import write_private

ROOT = Path(__file__).resolve().parents[2]


def test_lock_is_exclusive_until_closed(tmp_path: Path) -> None:
    path = tmp_path / "owner.lock"
    with path.open("a+") as first:
        assert platform.try_lock(first)
        with path.open("a+") as second:  # another open file: what a second process would hold
            assert not platform.try_lock(second)
        code = ("import sys; from tui.core import platform; "
                "sys.exit(0 if platform.try_lock(open(sys.argv[1], 'a+')) else 3)")
        other = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, timeout=60)
        assert other.returncode == 3  # another process is refused too
    with path.open("a+") as again:  # the first one closed: free
        assert platform.try_lock(again)


def test_private_file_is_owner_only_even_over_a_leftover(tmp_path: Path) -> None:
    key = tmp_path / "key"
    leftover = tmp_path / "key.tmp"
    leftover.write_text("old")
    leftover.chmod(0o644)  # a tmp left by a crash, readable by all: O_TRUNC keeps its mode
    write_private(key, b"secret")
    assert key.read_bytes() == b"secret" and not leftover.exists()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    plain = tmp_path / "plain"
    plain.write_text("x")
    plain.chmod(0o664)
    platform.restrict_to_owner(plain)
    assert stat.S_IMODE(plain.stat().st_mode) == 0o600


def test_key_permission_problem_and_fix(tmp_path: Path) -> None:
    key = tmp_path / "id"
    key.write_text("k")
    key.chmod(0o644)
    problem = platform.private_key_problem(key)
    assert problem is not None and "readable by others (mode 0644)" in problem
    assert platform.fix_private_key_hint(key) == f"chmod 600 {key}"
    key.chmod(0o600)
    assert platform.private_key_problem(key) is None
    assert platform.private_key_problem(tmp_path / "missing") is None  # the connection says so


def test_windows_acl_grants_the_current_user_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    argv = platform.owner_only_acl_argv(Path("C:/Users/ada/AppData/Local/cades-tui/keys/cades-tui"), "LAB\\ada")
    assert argv[0] == "icacls" and argv[2:] == ["/inheritance:r", "/grant:r", "LAB\\ada:F"]
    monkeypatch.setenv("USERDOMAIN", "LAB")
    monkeypatch.setenv("USER", "ada")
    monkeypatch.setenv("LOGNAME", "ada")
    assert platform.windows_user() == "LAB\\ada"
    monkeypatch.delenv("USERDOMAIN")
    assert platform.windows_user() == "ada"


def test_stop_signals_reach_the_loop_and_are_removed() -> None:
    assert platform.stop_signals() == (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # POSIX: SIGHUP too

    async def go() -> list[int]:
        loop = asyncio.get_running_loop()
        got: list[int] = []
        arrived = asyncio.Event()

        def stop(signum: int) -> None:
            got.append(signum)
            arrived.set()

        undo = platform.on_stop_signals(loop, stop)
        try:
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.wait_for(arrived.wait(), 5)
        finally:
            undo()
        assert not loop.remove_signal_handler(signal.SIGHUP)  # already removed by undo()
        return got

    assert asyncio.run(go()) == [signal.SIGHUP]
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL


def test_forwarder_knob(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(platform.FORWARDER_ENV, raising=False)
    assert platform.forwarder() == "auto" and platform.openssh_handoff_possible()
    for value, expected in (("asyncssh", "asyncssh"), (" AsyncSSH ", "asyncssh"), ("openssh", "openssh"),
                            ("bogus", "auto")):
        monkeypatch.setenv(platform.FORWARDER_ENV, value)
        assert platform.forwarder() == expected
        assert platform.openssh_handoff_possible() is (expected != "asyncssh")
    monkeypatch.setenv(platform.FORWARDER_ENV, "openssh")
    for elsewhere in ("darwin", "win32"):  # no SCM_RIGHTS hand-off through ssh, no TCP_INFO counters
        monkeypatch.setattr(sys, "platform", elsewhere)
        assert not platform.openssh_handoff_possible()


def test_dirs_per_platform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(var, raising=False)
    # Linux: XDG, unchanged
    assert (paths.config_dir(), paths.data_dir(), paths.state_dir()) == (
        tmp_path / ".config/cades-tui", tmp_path / ".local/share/cades-tui", tmp_path / ".local/state/cades-tui")
    # macOS: Apple's place for app files (platformdirs), one folder for all three
    monkeypatch.setattr(sys, "platform", "darwin")
    mac = tmp_path / "Library" / "Application Support" / "cades-tui"
    assert (paths.config_dir(), paths.data_dir(), paths.state_dir()) == (mac, mac, mac)
    # an absolute XDG variable wins everywhere (the tests' isolation); a relative one is ignored, as XDG says
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    assert paths.state_dir() == tmp_path / "elsewhere" / "cades-tui" and paths.config_dir() == mac


@pytest.mark.parametrize("where", ["darwin", "win32"])
def test_every_module_imports_without_fcntl_and_termios(where: str) -> None:
    """What the app imports on a laptop, in a process that has no fcntl or termios and calls itself macOS or
    Windows (the standard library and third-party packages are loaded first, as they are; then the app's own
    modules must not reach for a POSIX- or Linux-only one)."""
    code = f"""
import sys, asyncio, socket, subprocess, asyncssh, yaml, textual.app, openstack
for name in ("fcntl", "termios"):
    sys.modules[name] = None  # importing it now raises ImportError
sys.platform = {where!r}
import tui.__main__, tui.startup, tui.cli.dispatch, tui.cli.runner, tui.cli.jupyter, tui.cli.remote
import tui.core.engine, tui.core.manager, tui.core.demo, tui.core.keys, tui.core.paths, tui.core.platform
import tui.core.remote.tunnel, tui.core.remote.openssh_forward as fwd, tui.sandbox, tui.ui.app
from tui.core.remote.connection import SSHTarget
assert fwd.socket_bytes(socket.socket()) == (0, 0)
assert not fwd.openssh_usable(SSHTarget(host="h", key_path=__import__("pathlib").Path("k")))
print(tui.core.demo.host_note())
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    note = out.stdout.strip()
    if where == "win32":  # --demo says it in one line: the cloud panes work, the SSH VMs need WSL
        assert "WSL" in note and "\n" not in note
    else:
        assert note == "None"
