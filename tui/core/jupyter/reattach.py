"""Pick up servers again after the app restarts: saved state + a connection → running servers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import asyncssh

from tui.core.jupyter.server import JupyterControl, JupyterSpec, ServerHandle
from tui.core.remote.session import Multiplexer, RemoteSession
from tui.core.state import AppState, ServerRecord


def record_for(
    instance: str,
    handle: ServerHandle,
    settings: JupyterSpec,
    *,
    auto_reopen: bool = False,
) -> ServerRecord:
    """What to remember about a started server (no token)."""
    return ServerRecord(
        instance=instance,
        session=handle.session,
        multiplexer=str(handle.multiplexer),
        remote_port=handle.port,
        url=handle.public_url(),
        workspace=settings.workspace,
        logfile=settings.logfile,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        auto_reopen=auto_reopen,
    )


def control_for(
    conn: asyncssh.SSHClientConnection, record: ServerRecord, settings: JupyterSpec | None = None
) -> JupyterControl:
    """A JupyterControl for the server `record` describes (session, log, workspace from the record)."""
    base = settings or JupyterSpec()
    settings = replace(base, session=record.session, logfile=record.logfile or base.logfile,
                       workspace=record.workspace or base.workspace)
    return JupyterControl(conn, settings, RemoteSession(conn, Multiplexer(record.multiplexer)))


async def reattach(
    state: AppState, instance: str, conn: asyncssh.SSHClientConnection, settings: JupyterSpec | None = None
) -> ServerHandle | None:
    """The running server recorded for `instance` (token re-read from the VM), or None.

    The record is updated when the server moved port, and forgotten when it is gone.
    """
    record = state.servers.get(instance)
    if record is None:
        return None
    handle = await control_for(conn, record, settings).find(port=record.remote_port)
    if handle is None:
        state.forget(instance)
    elif handle.port != record.remote_port:
        state.put(replace(record, remote_port=handle.port, url=handle.public_url()))
    return handle
