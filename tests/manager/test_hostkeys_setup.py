"""Trust on first use through the manager (question answered no / yes from another thread), a changed host key
refused, and the setup pipeline's events passed through — against a sandbox instance's real sshd.

The contexts here are built without the console log, so nothing is pinned and the app's known_hosts decides.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import asyncssh
import pytest

from tui.core.api import ManagerError
from tui.core.events import ConnectionState, HostKeyQuestion, PipelineFinished, SetupProgress, StepStarted
from tui.core.guide.steps import CreateWorkspace, DetectSystem, WaitForSSH
from tui.core.models import StepStatus
from tui.core.remote.hostkeys import host_pattern
from tui.core.services import RemoteContext

from .conftest import Events, World


def unpinned(world: World, known_hosts: Path) -> tuple[RemoteContext, object]:
    services = world.services_with(known_hosts)
    ctx = RemoteContext(world.ctx.instance, services.target(world.ctx.instance))
    assert ctx.pinned is None
    return ctx, services


async def test_unknown_host_key_refused_then_accepted(world: World, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    ctx, services = unpinned(world, known)
    host = world.sandbox.ssh_host(world.iid)
    answers = iter([False, True])
    events = Events()

    def emit(event: object) -> None:
        events(event)  # type: ignore[arg-type]
        if isinstance(event, HostKeyQuestion):
            # the app answers from its own message handler; prove any thread may answer
            threading.Thread(target=event.answer, args=(next(answers),)).start()

    manager = world.manager(emit, services)  # type: ignore[arg-type]
    try:
        with pytest.raises(ManagerError, match="not trusted"):
            await manager.read_log(ctx)
        question = events.of(HostKeyQuestion)[0]
        assert question.fingerprint == host.host_key_fingerprint and question.key_type == "ssh-ed25519"
        assert (question.host, question.port, question.instance_id) == ("127.0.0.1", host.port, world.iid)
        assert events.of(ConnectionState)[-1].state == "failed"
        assert not known.exists() or host_pattern("127.0.0.1", host.port) not in known.read_text()

        steps = (WaitForSSH(), DetectSystem(), CreateWorkspace())
        manager.options = replace(manager.options, setup_steps=steps)
        result = await manager.run_setup(ctx)
        assert result.ok, result.summary
        assert len(events.of(HostKeyQuestion)) == 2
        assert f"[127.0.0.1]:{host.port} ssh-ed25519" in known.read_text()
        progress = [e.event for e in events.of(SetupProgress) if e.instance_id == world.iid]
        assert [e.step for e in progress if isinstance(e, StepStarted)] == ["ssh", "detect", "workspace"]
        finished = progress[-1]
        assert isinstance(finished, PipelineFinished) and finished.ok
        assert finished.results[0].status is StepStatus.SKIPPED  # connected while asking
        assert (host.home / "workspace").is_dir()  # the profile's workspace, ~/workspace (as the guide says)
        assert "mkdir" in world.services.command_log(world.ctx.instance).read()
    finally:
        await manager.aclose()


async def test_changed_host_key_is_refused(world: World, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    host = world.sandbox.ssh_host(world.iid)
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2]
    known.write_text(f"[127.0.0.1]:{host.port} {' '.join(impostor)}\n")
    ctx, services = unpinned(world, known)
    events = Events()
    manager = world.manager(events, services)  # type: ignore[arg-type]
    try:
        with pytest.raises(ManagerError, match="WARNING"):
            await manager.start_jupyter(ctx)
        assert events.of(HostKeyQuestion) == []  # never offered for acceptance
        failed = events.of(ConnectionState)[-1]
        assert failed.state == "failed" and host.host_key_fingerprint in failed.error
        assert known.read_text().count("\n") == 1  # left as it was
    finally:
        await manager.aclose()
