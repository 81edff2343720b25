"""The VM's setup lock never takes a live setup for an orphan (issue 19 item 2): a setup whose client is still
connected — another terminal's, on the same VM — is waited for, or refused with a clear line once `wait_s` has
passed; it is never stopped. Only a command whose client is gone is (tests/guide/test_vmlock.py). On real sshd hosts.

Before, the waiting run stopped the live one (SIGTERM to its process group) after `orphan_wait_s`.
"""

from __future__ import annotations

import asyncio
import secrets

from tests._support import eventually
from tui.core.guide import SSHExecutor
from tui.core.remote.connection import ConnectionPool
from tui.sandbox.sshhost import SSHHost

from .conftest import Rig


async def holding(rig: Rig, ssh_host: SSHHost, go: str) -> tuple[ConnectionPool, SSHExecutor, asyncio.Task]:  # type: ignore[type-arg]
    """Another terminal's setup (its own connection, still open) running a command that holds the lock until the
    file ~/`go` exists."""
    pool = ConnectionPool()
    other = SSHExecutor(pool, "i-1", rig.target, rig.log)
    task = asyncio.create_task(other.run(f"echo started; while [ ! -e ~/{go} ]; do sleep 0.05; done; echo other-done"))
    owner = ssh_host.home / ".cades-tui" / "setup.lock.owner"
    assert await eventually(lambda: owner.exists() and other.run_id in owner.read_text(), timeout=20)
    return pool, other, task


async def test_a_live_setup_is_refused_after_the_wait_and_never_stopped(rig: Rig, ssh_host: SSHHost) -> None:
    go = f"go-{secrets.token_hex(4)}"
    pool, _, task = await holding(rig, ssh_host, go)
    try:
        said: list[str] = []
        mine = SSHExecutor(rig.pool, "i-1", rig.target, rig.log, orphan_wait_s=1)
        mine.notice = said.extend
        result = await asyncio.wait_for(mine.run("echo mine"), 30)
        assert not result.ok and result.exit_status == 75 and "mine" not in result.output  # nothing done
        assert any("another setup run" in x and "client still connected" in x for x in said), said
        assert any("not stopping it; nothing done" in x for x in said), said
        assert not any("stopping it (SIGTERM" in x or "stopped it" in x for x in said), said
        assert not task.done()  # the other setup's command still runs
        (ssh_host.home / go).touch()
        other = await asyncio.wait_for(task, 20)
        assert other.ok and other.output.strip().endswith("other-done"), other
    finally:
        (ssh_host.home / go).touch()
        if not task.done():
            task.cancel()
        await pool.close_all()


async def test_a_live_setup_is_waited_for_then_the_next_command_runs(rig: Rig, ssh_host: SSHHost) -> None:
    go = f"go-{secrets.token_hex(4)}"
    pool, _, task = await holding(rig, ssh_host, go)
    try:
        said: list[str] = []
        mine = SSHExecutor(rig.pool, "i-1", rig.target, rig.log, orphan_wait_s=60)
        mine.notice = said.extend
        waiting = asyncio.create_task(mine.run("echo mine"))
        assert await eventually(lambda: any("waiting for it to finish" in x for x in said), timeout=20)
        assert any("client still connected" in x for x in said), said
        (ssh_host.home / go).touch()
        result = await asyncio.wait_for(waiting, 30)
        assert result.ok and result.output.strip() == "mine"
        assert any("it finished" in x for x in said) and not any("stopping it" in x for x in said), said
        assert (await asyncio.wait_for(task, 20)).ok
    finally:
        (ssh_host.home / go).touch()
        if not task.done():
            task.cancel()
        await pool.close_all()
