"""The VM's setup lock on real sshd hosts: a command left running by an interrupted setup (the app killed, the
connection cut) is waited for or stopped by the next run, which says which; a cancelled command is stopped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess

from tui.core.guide import OutputLines, SetupContext, SetupSpec, SSHExecutor, Step
from tui.core.remote.connection import ConnectionDropped, ConnectionPool
from tui.sandbox.sshhost import SSHHost

from .conftest import Rig


def pids(argv: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", "-x", argv], capture_output=True, text=True, check=False)
    return [int(p) for p in found.stdout.split()]


def kill(argv: str) -> None:
    for pid in pids(argv):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def wait_until(pred, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.05)):
        if pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def orphan(rig: Rig, command: str, argv: str) -> None:
    """An earlier setup run whose command is left running on the VM: its app's connection is cut mid-command."""
    pool = ConnectionPool()
    earlier = SSHExecutor(pool, "i-1", rig.target, rig.log)
    task = asyncio.create_task(earlier.run(command))
    try:
        await wait_until(lambda: bool(pids(argv)))
        conn = await pool.get("i-1")
        conn.abort()  # the app is gone (killed, terminal closed): nobody cancels anything
        with contextlib.suppress(ConnectionDropped):
            await asyncio.wait_for(task, 5)
    finally:
        await pool.close_all()
    assert pids(argv), "the earlier run's command should still run on the VM"


class ReadWhatTheOrphanDid(Step):
    name = "after"

    def describe(self, ctx: SetupContext) -> str:
        return "read what the earlier run wrote"

    async def check(self, ctx: SetupContext) -> bool:
        return (await ctx.probe("cat ~/orphan-wrote 2>/dev/null")).output.strip() == "done"  # waits for the lock

    async def apply(self, ctx: SetupContext) -> None:
        raise AssertionError("the earlier run's work is checked and found done")


async def test_a_rerun_waits_for_the_command_an_earlier_run_left_running(rig: Rig, ssh_host: SSHHost) -> None:
    argv = f"sleep {2 + secrets.randbelow(10**6) / 10**6:.6f}"  # unique: parallel workers run sleeps too
    try:
        await orphan(rig, f"{argv}; echo done > ~/orphan-wrote", argv)
        result = await rig.setup(SetupSpec(), steps=[ReadWhatTheOrphanDid()])
    finally:
        kill(argv)
    assert result.ok, result.summary
    said = [x for e in rig.events if isinstance(e, OutputLines) for x in e.lines]
    assert any("left running by an earlier run" in x and "waiting for it" in x for x in said), said
    assert any("it finished" in x for x in said), said
    assert not any("stopping it" in x for x in said)


async def test_a_rerun_stops_a_command_left_running_too_long_and_says_so(rig: Rig, ssh_host: SSHHost) -> None:
    argv = f"sleep {300 + secrets.randbelow(10**6) / 1000:.3f}"
    try:
        await orphan(rig, argv, argv)
        said: list[str] = []
        later = SSHExecutor(rig.pool, "i-1", rig.target, rig.log, orphan_wait_s=2)
        later.notice = said.extend
        result = await later.run("echo mine")
    finally:
        kill(argv)
    assert result.ok and result.output.strip() == "mine"  # the lock's notices are not the command's output
    assert any("waiting for it" in x for x in said) and any("stopping it" in x for x in said), said
    assert any("stopped it" in x for x in said), said
    assert pids(argv) == []


async def test_a_cancelled_command_is_stopped_on_the_vm(rig: Rig, ssh_host: SSHHost) -> None:
    argv = f"sleep {300 + secrets.randbelow(10**6) / 1000:.3f}"
    executor = SSHExecutor(rig.pool, "i-1", rig.target, rig.log)
    task = asyncio.create_task(executor.run(f"echo started; {argv}"))
    try:
        await wait_until(lambda: bool(pids(argv)))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await wait_until(lambda: not pids(argv), timeout=5)
        # and the lock is free again: the next command runs at once, with nothing to say
        said: list[str] = []
        executor.notice = said.extend
        assert (await asyncio.wait_for(executor.run("echo next"), 5)).output.strip() == "next" and said == []
    finally:
        kill(argv)


async def test_the_lock_files_are_private(rig: Rig, ssh_host: SSHHost) -> None:
    await SSHExecutor(rig.pool, "i-1", rig.target, rig.log).run("true")
    state = ssh_host.home / ".cades-tui"
    assert state.stat().st_mode & 0o777 == 0o700
    assert (state / "setup-lock.sh").stat().st_mode & 0o777 == 0o600


async def test_a_stale_process_group_number_is_never_signalled(rig: Rig, ssh_host: SSHHost) -> None:
    """The owner file names a process group that has ended, and the number now belongs to another program (here: a
    `sleep` in a session of its own, standing in for any program that got the number): stopping the orphan signals
    the groups that really hold the lock, never the recorded number. Before, the other program was killed."""
    argv = f"sleep {300 + secrets.randbelow(10**6) / 1000:.3f}"
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        await orphan(rig, argv, argv)
        owner = ssh_host.home / ".cades-tui" / "setup.lock.owner"
        fields = owner.read_text().split()
        owner.write_text(" ".join([str(bystander.pid), *fields[1:]]) + "\n")  # the number another program has now
        said: list[str] = []
        later = SSHExecutor(rig.pool, "i-1", rig.target, rig.log, orphan_wait_s=2)
        later.notice = said.extend
        result = await later.run("echo mine")
        assert result.ok and result.output.strip() == "mine"
        assert any("stopped it" in x for x in said), said
        assert pids(argv) == []  # the orphan that held the lock was stopped
        assert bystander.poll() is None  # and the program with the recorded number was left alone
    finally:
        kill(argv)
        bystander.kill()
        bystander.wait()
