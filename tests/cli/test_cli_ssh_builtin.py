"""`cades-tui ssh` without OpenSSH's `ssh` on PATH: the built-in client (tui.core.remote.interactive) against a
sandbox instance (a real sshd). The commands run with a PATH that holds only the venv's bin directory — no `ssh`
anywhere — piped (exit codes, stdin, stderr) and in a real pseudo-terminal (PTY, raw mode, resize, modes restored);
and the app's hand-off argv, which runs the same client in a child process, against a running --demo sandbox."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests._support import wait_until
from tui.core.remote.interactive import NOT_FOUND

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the PTY half needs POSIX; the sandbox's VMs too")

# Make the child's terminal (fd 0) its controlling terminal (it is a session leader: start_new_session), so that a
# resize of the terminal sends it SIGWINCH as a terminal would; then become `python -m tui ...`.
CTTY = ("import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")


def no_ssh_path() -> str:
    """A PATH with only the venv's bin (python, cades-tui): no OpenSSH client."""
    path = str(Path(sys.executable).parent)
    assert shutil.which("ssh", path=path) is None
    return path


@pytest.fixture
def env(sandbox: object, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "OS_CLIENT_CONFIG_FILE": str(sandbox.clouds_yaml), "OS_CLOUD": "sandbox",  # type: ignore[attr-defined]
            "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_STATE_HOME": str(tmp_path / "state"),
            "XDG_CONFIG_HOME": str(tmp_path / "config")}


def cades(env: dict[str, str], *args: str, stdin: str | None = None,
          timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)


@pytest.fixture
def vm(env: dict[str, str]) -> Iterator[str]:
    launched = cades(env, "launch", "builtin-vm", "--wait", "--json")
    assert launched.returncode == 0, launched.stderr
    try:
        yield str(json.loads(launched.stdout)["name"])
    finally:
        cades(env, "delete", "builtin-vm", "--yes", "--delete-volumes")


def test_piped_command_exit_code_stdin_and_stderr(env: dict[str, str], vm: str, tmp_path: Path) -> None:
    bare = {**env, "PATH": no_ssh_path()}
    r = cades(bare, "ssh", vm, "--", "echo hi; echo to-stderr >&2; exit 3")
    assert r.returncode == 3, r.stderr
    assert r.stdout.splitlines()[-1] == "hi"
    lines = r.stderr.splitlines()
    assert lines.count(NOT_FOUND) == 1 and "to-stderr" in lines, r.stderr
    assert "to-stderr" not in r.stdout  # no PTY when not on a terminal: the streams stay apart
    # no command: the remote shell reads its script from our stdin, and EOF ends it
    r = cades(bare, "ssh", vm, stdin="echo from-stdin; exit 5\n")
    assert r.returncode == 5 and "from-stdin" in r.stdout, r.stderr
    # a big stdin streams through (no PTY: bytes unchanged) and its EOF ends the remote command's input: from a
    # pipe (the event loop reads it) and from a regular file (a thread does)
    r = cades(bare, "ssh", vm, "--", "wc -c", stdin="x" * 3_000_000 + "\n")
    assert r.returncode == 0 and r.stdout.split()[0] == "3000001", r.stderr
    data = tmp_path / "data.bin"
    data.write_bytes(bytes(range(256)) * 8192)
    with data.open("rb") as fh:
        r = subprocess.run([sys.executable, "-m", "tui", "ssh", vm, "--", "md5sum"], env=bare, stdin=fh,
                           capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.split()[0] == hashlib.md5(data.read_bytes()).hexdigest(), r.stderr
    log = cades(env, "commands", vm)
    assert "echo hi; echo to-stderr >&2; exit 3" in log.stdout and "exit=3" in log.stdout, log.stdout
    # with ssh on PATH the OpenSSH client runs, and nothing is said about it
    if shutil.which("ssh", path=env.get("PATH")):
        r = cades(env, "ssh", vm, "--", "exit 4")
        assert r.returncode == 4 and NOT_FOUND not in r.stderr, r.stderr


def read_until(fd: int, seen: bytearray, wanted: bytes, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{wanted!r} not seen in {bytes(seen)[-2000:]!r}"
        if select.select([fd], [], [], min(left, 0.5))[0]:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
    assert wanted in seen, bytes(seen)[-2000:]


def set_size(fd: int, rows: int, cols: int) -> None:
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


@contextmanager
def in_a_terminal(argv: list[str], env: dict[str, str],
                  size: tuple[int, int] | None = None) -> Iterator[tuple[int, int, subprocess.Popen[bytes], list[Any]]]:
    """`argv` started as a session leader on a fresh PTY (its stdin, stdout and stderr), the terminal set to `size`
    (rows, cols) first: (master fd, slave fd, the process, the terminal's modes before it started). Afterwards the
    process is killed if it still runs, and both ends of the PTY are closed."""
    import termios

    master, slave = os.openpty()
    try:
        if size is not None:
            set_size(slave, *size)
        before = termios.tcgetattr(slave)
        proc = subprocess.Popen(argv, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        try:
            yield master, slave, proc, before
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    finally:
        os.close(master)
        os.close(slave)


def test_interactive_shell_in_a_real_terminal(env: dict[str, str], vm: str) -> None:
    import termios

    with in_a_terminal([sys.executable, "-c", CTTY, "-m", "tui", "ssh", vm],
                       {**env, "PATH": no_ssh_path(), "TERM": "xterm-256color"},
                       size=(30, 100)) as (master, slave, proc, before):
        seen = bytearray()
        read_until(master, seen, NOT_FOUND.encode())
        os.write(master, b"echo $((6*7)); echo TERM=$TERM; stty size\r")
        read_until(master, seen, b"30 100")
        assert b"\r42\r\n" in seen and b"TERM=xterm-256color" in seen  # a remote PTY with our terminal's type
        # raw mode while the session runs: no local echo, Ctrl+C is a key for the remote side
        mid = termios.tcgetattr(slave)
        assert not mid[3] & (termios.ECHO | termios.ICANON | termios.ISIG)
        argv = f"sleep {30 + secrets.randbelow(10**6) / 10**6:.6f}"  # unique: found by its argv (the VM runs here)
        os.write(master, f"{argv}; echo not-interrupted\r".encode())
        wait_until(lambda: subprocess.run(["pgrep", "-f", "-x", argv], capture_output=True).returncode == 0,
                   what="the remote sleep to run")
        os.write(master, b"\x03")  # interrupts the remote sleep, not us
        os.write(master, b"echo still-here\r")
        read_until(master, seen, b"\rstill-here\r\n")
        # the remote sleep was interrupted: "not-interrupted" only in the echoed command line, never as output
        assert proc.poll() is None and not re.search(rb"[\r\n]not-interrupted\r\n", seen), bytes(seen)
        set_size(master, 40, 120)  # SIGWINCH: the remote PTY follows (the remote shell waits until it has)
        os.write(master, b"until [ \"$(stty size)\" = '40 120' ]; do sleep 0.05; done; echo resized-$((6*7))\r")
        read_until(master, seen, b"resized-42\r\n")
        os.write(master, b"exit\r")
        assert proc.wait(timeout=30) == 0, bytes(seen)[-2000:]
        after = termios.tcgetattr(slave)
        assert after == before  # the terminal's modes are back as they were


def test_command_on_a_terminal_gets_no_pty(env: dict[str, str], vm: str) -> None:
    """`ssh NAME -- CMD` on a terminal, as OpenSSH's `ssh HOST CMD`: no PTY (output bytes unchanged), the terminal
    stays as it was (typed lines are the command's stdin), and the command's status is the exit code."""
    import termios

    with in_a_terminal([sys.executable, "-m", "tui", "ssh", vm, "--", "tty; read x; echo got-$x; exit 7"],
                       {**env, "PATH": no_ssh_path()}) as (master, slave, proc, before):
        seen = bytearray()
        read_until(master, seen, b"not a tty")
        assert termios.tcgetattr(slave) == before
        os.write(master, b"abc\n")
        read_until(master, seen, b"got-abc")
        assert proc.wait(timeout=30) == 7
        assert termios.tcgetattr(slave) == before


def test_app_hand_off_runs_the_builtin_client_against_the_running_demo(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """What ctrl+s runs without `ssh` (CoreEngine.shell.argv -> builtin_client_argv) under --demo: a child
    `cades-tui ssh ID --demo` that finds the sandbox this process owns (by its lock) instead of starting another."""
    from tui.core.config import load_settings
    from tui.core.demo import start_demo
    from tui.core.remote.interactive import builtin_client_argv
    from tui.startup import start_sandbox

    monkeypatch.setenv("CADES_TUI_SANDBOX_DIR", str(tmp_path / "sb"))
    demo = start_demo(start_sandbox, tmp_path / "sb")
    assert demo.sandbox is not None
    try:
        settings = load_settings().with_cloud("sandbox", str(demo.clouds_yaml))  # as tui.startup.prepare does
        argv = builtin_client_argv(settings, "analytics-1", "echo demo-child; pwd; exit 4")
        assert argv[:5] == [sys.executable, "-m", "tui", "ssh", "analytics-1"] and "--demo" in argv
        r = subprocess.run(argv, env={**os.environ, "PATH": no_ssh_path()}, capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
        assert r.returncode == 4, r.stderr
        assert "demo-child" in r.stdout and NOT_FOUND in r.stderr
        assert str(tmp_path / "sb") in r.stdout  # the VM's home is on this process's sandbox: no second one
    finally:
        demo.sandbox.stop()  # power the demo's VMs off for real
        demo.lock.close() if demo.lock else None


def test_in_process_with_a_stdin_that_has_no_descriptor(env: dict[str, str], vm: str, monkeypatch: pytest.MonkeyPatch,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    """`main(["ssh", ...])` inside this process, where pytest's stdin has no descriptor: the command gets EOF."""
    from tui.__main__ import main

    for var in ("OS_CLIENT_CONFIG_FILE", "OS_CLOUD", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(var, env[var])
    monkeypatch.setenv("PATH", no_ssh_path())
    assert main(["ssh", vm, "--", "cat; echo in-process; exit 2"]) == 2
    out, err = capfd.readouterr()
    assert out.splitlines()[-1] == "in-process" and NOT_FOUND in err
