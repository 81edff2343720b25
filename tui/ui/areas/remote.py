"""The instances' life over SSH beyond one action: reattaching after a start, idle nudges, load and memory after
each poll, the SSH connection's state, host keys to trust, a shell hand-off, and forgetting deleted instances."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from textual import work
from textual.binding import Binding
from textual.timer import Timer
from textual.worker import Worker

from tui.ui.areas.base import Area, msg

if TYPE_CHECKING:
    from tui.core.api import Engine
    from tui.core.events import (
        BackgroundFailed,
        ConnectionState,
        HostKeyQuestion,
        HostKeysUnpinned,
        IdleNudge,
        Polled,
    )
    from tui.core.models import Instance
    from tui.ui.bridge import CoreMessage
    from tui.ui.transfers import Severity, TransferQueue

IDLE_EVERY = 36  # idle check every 36 refreshes (3 minutes with the default 5 s)


class RemoteArea(Area):
    _transfers: TransferQueue | None
    _reattached: bool
    _idle_timer: Timer | None
    idle_every_s: float

    def after_poll(self, polled: Polled) -> None:
        """Each poll: forget instances that are gone, read load and memory, reattach once."""
        engine = self.engine
        if engine is None:
            return
        for iid in self.fleet.gone(polled.instances):
            self._forget(engine, iid)
        self._refresh(engine, list(polled.instances))
        if not self._reattached:
            self._reattached = True
            self._reattach(engine, list(polled.instances))

    # description=: without it Textual repr()s the arguments — every instance, ~0.5 s with 1,000 — on each poll
    @work(group="refresh", exclusive=True, exit_on_error=False, name="read load and memory",
          description="read load and memory")
    async def _refresh(self, engine: Engine, instances: list[Instance]) -> None:
        await engine.refresh(instances)

    @work(group="forget", exit_on_error=False, name="forget a deleted instance")
    async def _forget(self, engine: Engine, instance_id: str) -> None:
        """The instance is gone from the cloud: close its tunnels, drop its state; no message names it by id."""
        await engine.forget_instance(instance_id)
        self.fleet.forget(instance_id)
        self.fleet_changed()  # type: ignore[attr-defined]

    @work(group="reattach", exclusive=True, exit_on_error=False, name="reattach to running Jupyter servers",
          description="reattach to running Jupyter servers")
    async def _reattach(self, engine: Engine, instances: list[Instance]) -> None:
        """After the first poll: find the Jupyter servers recorded on known instances and re-open their tunnels.
        The idle checks start afterwards, whatever happens here. Each server found says so itself (its
        JupyterState: where it answers, and `o` to open it), so no summary repeats it."""
        try:
            await engine.reattach(instances)
        finally:
            self._arm_idle()
            self.check_leftovers()  # type: ignore[attr-defined]

    def _arm_idle(self) -> None:
        if not self._quitting:
            self._idle_timer = self.set_timer(self.idle_every_s, self._check_idle)

    @work(group="idle", exclusive=True, exit_on_error=False, name="idle check")
    async def _check_idle(self) -> None:
        """Ask each running server how long it has been idle (nudges come as events); re-armed in `finally`."""
        try:
            if self.engine is not None:
                await self.engine.check_idle(self.fleet.instances(), self.clock())
        finally:
            self._arm_idle()

    def action_snooze(self) -> None:
        async def job(engine: Engine, inst: Instance) -> str | None:
            until = engine.snooze(inst.id)
            return f"Idle reminders for {inst.name} are quiet until {until:%a %H:%M %Z}."

        self.run_remote("snooze", job)

    def action_shell(self) -> None:
        async def job(engine: Engine, inst: Instance) -> str | None:
            import shlex
            import subprocess

            from textual.app import SuspendNotSupported

            argv = await engine.shell_argv(inst)  # the host key is settled first (pinned or asked)
            try:
                with self.suspend():
                    code = await asyncio.to_thread(subprocess.call, argv)
            except SuspendNotSupported:
                return f"This terminal cannot hand over to a shell; run:\n{shlex.join(argv)}"
            return f"Back from the shell on {inst.name} (exit code {code})."

        self.run_remote("shell", job)

    def action_transfers(self) -> None:
        """The Transfers view of the selected instance; the queue is one `TransferQueue` (tui.ui.transfers) that
        outlives the view, the app only opens it."""
        inst = self.selected_instance()
        if inst is None:
            return
        from tui.ui.screens.transfers import TransfersScreen
        from tui.ui.transfers import TransferQueue

        if self._transfers is None:
            self._transfers = TransferQueue(lambda: self.engine, self._start_transfer, self._say_transfer)
        self.push_screen(TransfersScreen(self._transfers, inst.name, self.settings.jupyter.workspace))

    def _start_transfer(self, job: Coroutine[Any, Any, None], name: str) -> Worker[None]:
        return self.run_worker(job, group="transfers", exit_on_error=False, name=name)

    def _say_transfer(self, text: str, severity: Severity) -> None:
        self.notify(text, title="Transfers", severity=severity, timeout=8)

    def on_remote_result(self, message: msg.RemoteResult) -> None:
        title = f"{message.action.capitalize()} · {message.target}"
        if message.ok:
            self.notify(message.text, title=title, timeout=8)
        else:
            self.notify(message.text, title=f"{title} failed", severity="error", timeout=12)

    def on_connection_state(self, message: CoreMessage[ConnectionState]) -> None:
        event = message.event
        if event.state == "lost" and not self._quitting:
            name = self.instance_name(event.instance_id)
            self.notify(f"SSH connection to {name} lost ({event.error}). It is made again on the next action; "
                        "tunnels reconnect by themselves.", title=f"SSH · {name}", severity="warning")

    def on_background_failed(self, message: CoreMessage[BackgroundFailed]) -> None:
        event = message.event
        where = f" · {self.instance_name(event.instance_id)}" if event.instance_id else ""
        self.notify(event.message, title=f"Background work failed{where}", severity="warning", timeout=15)

    def on_host_keys_unpinned(self, message: CoreMessage[HostKeysUnpinned]) -> None:
        self.notify(message.event.message, title=f"Host key · {message.event.name}", severity="warning", timeout=20)

    def on_host_key_question(self, message: CoreMessage[HostKeyQuestion]) -> None:
        from tui.ui.screens.hostkey import HostKeyScreen

        q = message.event
        if self._quitting:
            q.refuse()
            return

        def answered(trust: bool | None) -> None:
            q.accept() if trust else q.refuse()

        self.push_screen(HostKeyScreen(self.instance_name(q.instance_id), q.host, q.port, q.key_type,
                                       q.fingerprint), answered)

    def on_idle_nudge(self, message: CoreMessage[IdleNudge]) -> None:
        nudge = message.event
        snooze = self.get_key_display(Binding(self._keymap.get("snooze", "z"), ""))
        self.notify(f"{nudge.message}\nPress {nudge.key} on it to act, or {snooze} to snooze for a day.",
                    title=f"Idle · {self.instance_name(nudge.instance_id)}", severity="warning", timeout=20)
