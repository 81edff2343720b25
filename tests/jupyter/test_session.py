"""Detached remote sessions (GNU screen and tmux) through a real sshd."""

from __future__ import annotations

import asyncio
import shlex
import time

import pytest

from tui.core.remote.session import Multiplexer, RemoteSession, SessionError, detect_multiplexer, remote_path
from tui.sandbox.sshhost import SSHHost

# Prints a line, echoes what is typed, and says goodbye on Ctrl+C.
SCRIPT = (
    "trap 'echo got-interrupt; exit 0' INT; echo started in $(pwd); "
    "while read -r line; do echo \"typed:$line\"; done"
)


# One program (the session runs `exec COMMAND`): "echo hello; sleep 30" would exec echo and end the pane at once,
# and tmux may drop the output of a pane that ends before it reads it.
HELLO = "bash -c 'echo hello; sleep 30'"


async def _wait_for_text(ssh_host: SSHHost, rel: str, text: str, timeout: float = 5.0) -> float:
    t0 = time.monotonic()
    path = ssh_host.home / rel
    while time.monotonic() - t0 < timeout:
        if path.exists() and text in path.read_text(errors="replace"):
            return time.monotonic() - t0
        await asyncio.sleep(0.05)
    content = path.read_text(errors="replace") if path.exists() else "<missing>"
    raise AssertionError(f"{text!r} not in {rel} after {timeout} s: {content!r}")


@pytest.mark.parametrize("kind", [Multiplexer.SCREEN, Multiplexer.TMUX])
async def test_session_lifecycle(connect, ssh_host: SSHHost, kind: Multiplexer) -> None:
    async with await connect() as conn:
        sessions = RemoteSession(conn, kind)
        name = f"t-{kind}"
        rel = f"logs/{kind} log's.txt"  # spaces and quotes survive quoting
        log = "~/" + rel
        await sessions.start(name, f"bash -c {shlex.quote(SCRIPT)}", "~/work space", log)
        try:
            assert await sessions.is_running(name)
            assert name in await sessions.list()
            # flushed at once (screen would otherwise flush every 10 s)
            assert await _wait_for_text(ssh_host, rel, "started in") < 3.0
            assert f"started in {ssh_host.home}/work space" in (ssh_host.home / rel).read_text()
            with pytest.raises(SessionError, match="already running"):
                await sessions.start(name, "true", "~", log)
            await sessions.send_text(name, "it's $HOME; `x` ^C \\101\r")
            await _wait_for_text(ssh_host, rel, "typed:it's $HOME; `x` ^C \\101")
            await sessions.send_interrupt(name)
            await _wait_for_text(ssh_host, rel, "got-interrupt")
            assert await sessions.wait_gone(name, timeout=5)
            assert not await sessions.is_running(name)
        finally:
            await sessions.kill(name)


async def test_kill_and_detect(connect) -> None:
    async with await connect() as conn:
        assert await detect_multiplexer(conn) is Multiplexer.SCREEN  # screen is preferred
        sessions = RemoteSession(conn, Multiplexer.SCREEN)
        await sessions.start("sleeper", "sleep 60", "~", "~/sleeper.log")
        assert await sessions.is_running("sleeper")
        assert not await sessions.is_running("sleepe")  # no prefix matches
        await sessions.kill("sleeper")
        assert await sessions.wait_gone("sleeper", timeout=3)


def test_remote_path_quoting() -> None:
    assert remote_path("~") == '"$HOME"'
    assert remote_path("~/a b/c") == "\"$HOME\"/'a b/c'"
    assert remote_path("/tmp/x;rm -rf /") == "'/tmp/x;rm -rf /'"


async def test_log_tail_batches_a_flood_with_bounded_memory(connect) -> None:
    from tui.core.jupyter.logtail import LogTail

    async with await connect() as conn:
        await conn.run("printf 'old line\\n' > ~/flood.log", check=True)
        tail = LogTail(conn, "~/flood.log", history=10, max_lines=1000, interval=0.05, max_batch=5000)
        batches: list[list[str]] = []
        try:
            it = tail.batches()
            batches.append(await asyncio.wait_for(anext(it), 5))
            assert batches[0] == ["old line"]
            await conn.run("for i in $(seq 1 100000); do printf '\\033[32m%s\\033[m\\r\\n' $i; done >> ~/flood.log",
                           check=True)

            async def rest() -> None:
                async for batch in it:
                    batches.append(batch)
                    if batch[-1] == "100000":
                        return

            await asyncio.wait_for(rest(), 20)
        finally:
            await tail.close()
        lines = [x for b in batches[1:] for x in b]
        assert lines == [str(i) for i in range(1, 100001)]  # in order, clean, none lost
        assert tail.total == 100001 and len(tail.lines) == 1000 and tail.lines[-1] == "100000"
        assert len(batches) < 200 and max(len(b) for b in batches) <= 5000


@pytest.mark.parametrize("kind", [Multiplexer.SCREEN, Multiplexer.TMUX])
async def test_the_log_is_private_on_the_vm(connect, ssh_host: SSHHost, kind: Multiplexer) -> None:
    """The log holds Jupyter's token URL: 0600 in a 0700 directory, also when an older version left them 0644/0755
    (the shell's umask of 022 would make both world-readable)."""
    state_dir = ssh_host.home / f".state-{kind}"
    state_dir.mkdir(mode=0o755, exist_ok=True)
    state_dir.chmod(0o755)
    old = state_dir / "jupyter.log"
    old.write_text("token=left-by-an-older-version\n")
    old.chmod(0o644)
    fresh_dir = f"~/.fresh-{kind}/sub"
    async with await connect() as conn:
        sessions = RemoteSession(conn, kind)
        try:
            await sessions.start(f"p-{kind}", HELLO, "~", f"~/.state-{kind}/jupyter.log")
            await sessions.start(f"q-{kind}", HELLO, "~", f"{fresh_dir}/jupyter.log")
            await _wait_for_text(ssh_host, f".state-{kind}/jupyter.log", "hello")
            await _wait_for_text(ssh_host, f".fresh-{kind}/sub/jupyter.log", "hello")
        finally:
            await sessions.kill(f"p-{kind}")
            await sessions.kill(f"q-{kind}")
    for directory in (state_dir, ssh_host.home / f".fresh-{kind}" / "sub"):
        assert directory.stat().st_mode & 0o777 == 0o700, directory
        for f in directory.iterdir():
            assert f.stat().st_mode & 0o777 == 0o600, f
    assert "left-by-an-older-version" not in old.read_text()


async def test_a_log_in_home_leaves_home_s_mode_alone(connect, ssh_host: SSHHost) -> None:
    before = ssh_host.home.stat().st_mode & 0o777
    async with await connect() as conn:
        sessions = RemoteSession(conn, Multiplexer.SCREEN)
        try:
            await sessions.start("h", HELLO, "~", "~/home.log")
            await _wait_for_text(ssh_host, "home.log", "hello")
        finally:
            await sessions.kill("h")
    assert ssh_host.home.stat().st_mode & 0o777 == before
    assert (ssh_host.home / "home.log").stat().st_mode & 0o777 == 0o600
