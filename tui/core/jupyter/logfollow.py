"""The live Jupyter log of each instance, streamed as `LogLines` events until it is no longer wanted.

One follower task per instance tails the server's log file (the recorded one, else the configured one) over the
instance's pooled connection: the last `log_history` lines first, then new lines as they come. A dropped connection
is followed again (with a growing pause, at most 10 s) without repeating what was shown; a refused host key or login
ends the follower, and so does any other error: each is logged and said as `BackgroundFailed` (`tui.core.tasks`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import asyncssh

from tui.core.errors import ManagerError, RetryLater
from tui.core.events import Emit, LogLines
from tui.core.jupyter.logtail import LogTail
from tui.core.remote.pool import InstanceConnections
from tui.core.services import RemoteContext
from tui.core.state import AppState
from tui.core.tasks import spawn

if TYPE_CHECKING:
    from tui.core.options import ManagerOptions


class LogFollower:
    def __init__(self, connections: InstanceConnections, state: AppState, emit: Emit,
                 options: ManagerOptions) -> None:
        self.connections = connections
        self.state = state
        self.emit = emit
        self.options = options  # replaced with the manager's
        self._follows: dict[str, asyncio.Task[None]] = {}

    async def follow(self, ctx: RemoteContext) -> None:
        """Stream the server log as `LogLines` (the last `log_history` lines first) until `unfollow`; re-follows
        after a dropped connection."""
        iid = ctx.instance.id
        task = self._follows.get(iid)
        if task is not None and not task.done():
            return
        record = self.state.servers.get(iid)
        logfile = record.logfile if record and record.logfile else self.options.jupyter_logfile
        self._follows[iid] = spawn(self._follow(ctx, logfile), name=f"following the Jupyter log of {ctx.instance.name}",
                                   emit=self.emit, instance_id=iid)

    async def unfollow(self, instance_id: str) -> None:
        task = self._follows.pop(instance_id, None)
        if task is not None:
            task.cancel()
            await asyncio.wait([task])  # ended: a failure was reported when it happened (`spawn`), not raised here

    async def aclose(self) -> None:
        """End every follower."""
        for iid in list(self._follows):
            await self.unfollow(iid)

    async def _follow(self, ctx: RemoteContext, logfile: str) -> None:
        iid = ctx.instance.id
        history, delay = self.options.log_history, 0.5
        while True:
            try:
                conn = await self.connections.conn(ctx)
            except ManagerError as exc:
                if not isinstance(exc, RetryLater):
                    raise  # host key or authentication: final — the follower ends, and says so
            else:
                tail = LogTail(conn, logfile, history=history)
                try:
                    async for batch in tail.batches():
                        self.emit(LogLines(iid, tuple(batch)))
                        delay = 0.5
                except (OSError, asyncssh.Error):
                    pass
                finally:
                    await tail.close()
                history = 0  # what was shown already is not repeated
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
