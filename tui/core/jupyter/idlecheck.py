"""Idle checks of an instance: VM uptime and Jupyter activity against the profile's thresholds, and their snoozes.

`IdleCheck.check` reads the running server's activity (kernels and terminals, not UI polling; a busy kernel counts
as activity) and emits an `IdleNudge` past the thresholds unless the instance is snoozed; `snooze` quiets an
instance's nudges for some hours (kept in the state file). The nudge rules themselves live in `tui.core.jupyter.idle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tui.core.config import Settings
from tui.core.errors import ManagerError
from tui.core.events import Emit, IdleNudge
from tui.core.jupyter import idle
from tui.core.jupyter.servers import FAILURES, JupyterServers
from tui.core.remote.pool import InstanceConnections
from tui.core.services import RemoteContext
from tui.core.shelveplan import nudge_choice
from tui.core.state import AppState


@dataclass(frozen=True, slots=True)
class IdleReport:
    """What `check_idle` found: VM uptime, Jupyter idle time (None: no server), kernels, and the nudge."""

    instance_id: str
    uptime_s: float | None
    jupyter_idle_s: float | None
    kernels: int
    busy_kernels: int
    nudge: idle.Nudge | None


class IdleCheck:
    def __init__(self, settings: Settings, state: AppState, emit: Emit, connections: InstanceConnections,
                 servers: JupyterServers) -> None:
        self.settings = settings
        self.state = state
        self.emit = emit
        self.connections = connections
        self.servers = servers

    async def check(self, ctx: RemoteContext, now: datetime | None = None) -> IdleReport:
        """VM uptime and Jupyter activity (kernels and terminals, not UI polling); emits `IdleNudge` past the
        profile's thresholds unless snoozed. A busy kernel counts as activity."""
        iid = ctx.instance.id
        now = now or datetime.now(UTC)
        jupyter_idle: float | None = None
        kernels = busy = 0
        try:
            handle = await self.servers.find(ctx)
            if handle is not None:
                control = await self.servers.control(await self.connections.conn(ctx), iid)
                activity = await control.activity(handle)
                kernels, busy = len(activity.kernels), len(activity.busy_kernels)
                jupyter_idle = 0.0 if busy else activity.idle_seconds(now)
        except FAILURES as exc:
            raise ManagerError(f"checking activity on {ctx.instance.name}: {exc}") from exc
        uptime = ctx.instance.uptime_seconds(now)
        nudge = idle.nudge(uptime, jupyter_idle, self.settings.idle, name=ctx.instance.name,
                           keymap=self.settings.keymap, now=now, snoozed_until=self.state.snoozed_until(iid),
                           choice=nudge_choice(self.settings, ctx.instance))
        if nudge is not None:
            self.emit(IdleNudge(iid, nudge.tier, nudge.key, nudge.message))
        return IdleReport(iid, uptime, jupyter_idle, kernels, busy, nudge)

    def snooze(self, instance_id: str, hours: float = 24.0, now: datetime | None = None) -> datetime:
        """Quiet the instance's idle nudges for `hours` (kept in the state file)."""
        until = idle.snooze_until(now or datetime.now(UTC), hours)
        self.state.snooze(instance_id, until)
        return until
