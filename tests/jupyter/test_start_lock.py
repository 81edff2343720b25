"""Starts of Jupyter at once on one VM (two terminals, the app and a command) give ONE server, and every start
reports it (issue 19 item 2): the session check and its start run under the VM's start lock. On a real sshd "VM"
with real screen/tmux and Jupyter.

Before the lock, starts at once each found no session and each started one (2 of 29 rounds from the CLI; here,
four starts at once, every time), or one of them failed with "already running".
"""

from __future__ import annotations

import asyncio
import shlex

import pytest

from tui.core.jupyter import startlock
from tui.core.jupyter.server import JupyterControl, JupyterError, JupyterSpec
from tui.core.remote.session import Multiplexer, RemoteSession, run

STARTS = 4


async def sessions(conn, kind: Multiplexer, name: str) -> int:  # type: ignore[no-untyped-def]
    """How many live sessions named `name` the VM has (what `screen -ls` / `tmux ls` would show a user)."""
    if kind is Multiplexer.SCREEN:
        out = (await run(conn, "screen -ls")).stdout
        return sum(1 for line in out.splitlines() if line.split() and line.split()[0].endswith("." + name)
                   and "dead" not in line.lower())
    out = (await run(conn, "tmux list-sessions -F '#{session_name}' 2>/dev/null")).stdout
    return out.split().count(name)


@pytest.mark.parametrize("kind", [Multiplexer.SCREEN, Multiplexer.TMUX])
async def test_starts_at_once_give_one_server_that_every_start_reports(connect, jupyter_cmd: str,
                                                                       kind: Multiplexer) -> None:
    name = f"jl-{kind}"
    settings = JupyterSpec(command=jupyter_cmd, workspace="~/ws-lock", port=28900, session=name,
                               logfile=f"~/{name}.log")
    conns = [await connect() for _ in range(STARTS)]
    controls = [JupyterControl(c, settings, RemoteSession(c, kind)) for c in conns]
    try:
        handles = await asyncio.gather(*(c.start() for c in controls), return_exceptions=True)
        count = await sessions(conns[0], kind, name)
        assert count == 1, (count, handles)
        assert not [h for h in handles if isinstance(h, BaseException)], handles
        assert len({(h.port, h.token, h.pid) for h in handles}) == 1, handles  # type: ignore[union-attr]
        assert len(await controls[0].runtime_files()) == 1  # one Jupyter process on the VM
        await controls[0].stop(handles[0])  # type: ignore[arg-type]
        assert await sessions(conns[0], kind, name) == 0  # one stop ends it: there is no second one
    finally:
        await controls[0].session.kill(name)  # what a failed assertion left (the module's VM ends the rest)
        for c in conns:
            c.close()


async def test_an_old_session_that_does_not_answer_is_refused_at_once(connect, jupyter_cmd: str) -> None:
    """A session of that name started long ago (no start stamp, no answering Jupyter) is not waited for."""
    settings = JupyterSpec(command=jupyter_cmd, workspace="~/ws-old", port=28910, session="jold",
                               logfile="~/jold.log", start_timeout=60)
    async with await connect() as conn:
        session = RemoteSession(conn, Multiplexer.SCREEN)
        await session.start("jold", "sleep 600", "~", "~/jold-sleep.log")
        try:
            control = JupyterControl(conn, settings, session)
            with pytest.raises(JupyterError, match="already running, and its Jupyter does not answer"):
                await asyncio.wait_for(control.start(), 10)
            assert await sessions(conn, Multiplexer.SCREEN, "jold") == 1  # left alone
        finally:
            await session.kill("jold")


def test_the_lock_command_quotes_the_session_and_closes_the_lock_for_the_server() -> None:
    cmd = startlock.locked(Multiplexer.SCREEN, "a b;rm", "screen -dmS 'a b;rm' bash -c 'exec jupyter'")
    assert "N='a b;rm' awk" in cmd and "jupyter-a_b_rm.started" in cmd
    assert cmd.rstrip().endswith("} 8>&-")  # the multiplexer (and Jupyter) never inherit the lock
    assert shlex.quote("=x") in startlock.running_test(Multiplexer.TMUX, "x")
    assert startlock.already_started("noise\ncades-tui: session running for 3 s\n") == 3
    assert startlock.already_started("") is None
