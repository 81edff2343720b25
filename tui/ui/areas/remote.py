"""The instances' life over SSH beyond one action: reattaching after a start, idle nudges, load and memory after
each poll, the SSH connection's state, host keys to trust, a shell hand-off, and forgetting deleted instances."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from textual.binding import Binding
from textual.worker import Worker

from tui.ui.areas.base import Owner, work

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel
    from textual.timer import Timer

    from tui.core.api import Engine
    from tui.core.events import Polled
    from tui.core.models import Instance
    from tui.ui import core_messages as cm
    from tui.ui.app import CadesApp
    from tui.ui.autostop import AutostopOwner
    from tui.ui.transfers import Severity, TransferQueue
    from tui.ui.vscode import VSCodeOpener

IDLE_EVERY = 36  # idle check every 36 refreshes (3 minutes with the default 5 s)


class Remote(Owner):
    def __init__(self, app: CadesApp) -> None:
        super().__init__(app)
        self.reattached = False  # the first poll's reattach ran
        self.idle_timer: Timer | None = None
        self.idle_every_s = app.settings.ui.refresh_s * IDLE_EVERY
        self._autostop: AutostopOwner | None = None  # made on first use (`u`, `w`, a watchdog's state)
        self.transfers: TransferQueue | None = None  # the Transfers view's queue, made when first opened

    def after_poll(self, polled: Polled) -> None:
        """Each poll: forget instances that are gone, read load and memory, reattach once."""
        engine = self.engine
        if engine is None:
            return
        for iid in self.fleet.gone(polled.instances):
            self._forget(engine, iid)
        self._refresh(engine, list(polled.instances))
        if not self.reattached:
            self.reattached = True
            self._reattach(engine, list(polled.instances))

    @work(group="refresh", exclusive=True, name="read load and memory")
    async def _refresh(self, engine: Engine, instances: list[Instance]) -> None:
        await engine.fleet.refresh(instances)

    @work(group="forget", name="forget a deleted instance")
    async def _forget(self, engine: Engine, instance_id: str) -> None:
        """The instance is gone from the cloud: close its tunnels, drop its state; no message names it by id."""
        await engine.forget_instance(instance_id)
        self.fleet.forget(instance_id)
        self.app.fleet_changed()

    @work(group="reattach", exclusive=True, name="reattach to running Jupyter servers")
    async def _reattach(self, engine: Engine, instances: list[Instance]) -> None:
        """After the first poll: find the Jupyter servers recorded on known instances and re-open their tunnels.
        The idle checks start afterwards, whatever happens here. Each server found says so itself (its
        JupyterState: where it answers, and `o` to open it), so no summary repeats it."""
        try:
            await engine.fleet.reattach(instances)
        finally:
            self._arm_idle()
            self.app.clusters.check_leftovers()

    def _arm_idle(self) -> None:
        if not self.app.quitting:
            self.idle_timer = self.app.set_timer(self.idle_every_s, self._check_idle)

    @work(group="idle", exclusive=True, name="idle check")
    async def _check_idle(self) -> None:
        """Ask each running server how long it has been idle (nudges come as events); re-armed in `finally`."""
        try:
            if self.engine is not None:
                await self.engine.fleet.check_idle(self.fleet.instances(), self.app.clock())
        finally:
            self._arm_idle()

    def snooze(self) -> None:
        async def job(engine: Engine, inst: Instance) -> str | None:
            until = engine.jupyter.snooze(inst.id)
            return f"Idle reminders for {inst.name} are quiet until {until:%a %H:%M %Z}."

        self.app.jobs.run("snooze", job)

    _vscode: VSCodeOpener | None = None  # `e`, made on first use

    def vscode(self) -> None:
        """`e`: the selected instance in VS Code; the owner (`tui.ui.vscode.VSCodeOpener`) does the work."""
        inst = self.selected_instance()
        if inst is None:
            return
        if self._vscode is None:
            from tui.ui.vscode import VSCodeOpener

            self._vscode = VSCodeOpener(engine=lambda: self.engine, workspace=self.settings.jupyter.workspace,
                                        notify=self.notify, ask=self._ask_yes, copy=self.app.copy_to_clipboard)
        self.app.run_worker(self._vscode.open(inst), group=f"vscode:{inst.id}", exclusive=True, exit_on_error=False,
                            name=f"open {inst.name} in VS Code")

    async def _ask_yes(self, title: str, body: str) -> bool:
        from tui.ui.screens.confirm import Confirm

        answer: bool | None = await self.app.push_screen_wait(Confirm(title, body, "Add it"))
        return bool(answer)

    # autostop (issue 23): the owner object (tui/ui/autostop.py) does the work; these only delegate
    @property
    def autostop(self) -> AutostopOwner:
        if self._autostop is None:
            from tui.ui.autostop import AutostopOwner
            from tui.ui.screens.autostop import AutostopDialog

            def ask(name: str, now: str, idle: str, action: str, then: Callable[[Any], None]) -> None:
                self.app.push_screen(AutostopDialog(name, now, idle, action), then)

            def notify(text: str, title: str, severity: SeverityLevel) -> None:
                self.notify(text, title=title, severity=severity, timeout=20)

            self._autostop = AutostopOwner(self.settings, self.app.jobs.run, ask, notify, self.instance_name)
        return self._autostop

    def set_autostop(self) -> None:
        self.autostop.set_or_clear(self.selected_instance())

    def keep_autostop(self) -> None:
        self.autostop.keep()

    def on_autostop_state(self, message: cm.AutostopStateMessage) -> None:
        self.autostop.on_state(message.event)

    def shell(self) -> None:
        async def job(engine: Engine, inst: Instance) -> str | None:
            import shlex
            import subprocess

            from textual.app import SuspendNotSupported

            argv = await engine.shell.argv(inst)  # the host key is settled first (pinned or asked)
            try:
                with self.app.suspend():
                    code = await asyncio.to_thread(subprocess.call, argv)
            except SuspendNotSupported:
                return f"This terminal cannot hand over to a shell; run:\n{shlex.join(argv)}"
            return f"Back from the shell on {inst.name} (exit code {code})."

        self.app.jobs.run("shell", job)

    def open_transfers(self) -> None:
        """The Transfers view of the selected instance; the queue is one `TransferQueue` (tui.ui.transfers) that
        outlives the view, the app only opens it."""
        inst = self.selected_instance()
        if inst is None:
            return
        from tui.ui.screens.transfers import TransfersScreen
        from tui.ui.transfers import TransferQueue

        if self.transfers is None:
            self.transfers = TransferQueue(lambda: self.engine, self._start_transfer, self._say_transfer)
        self.app.push_screen(TransfersScreen(self.transfers, inst.name, self.settings.jupyter.workspace))

    def _start_transfer(self, job: Coroutine[Any, Any, None], name: str) -> Worker[None]:
        return self.app.run_worker(job, group="transfers", exit_on_error=False, name=name)

    def _say_transfer(self, text: str, severity: Severity) -> None:
        self.notify(text, title="Transfers", severity=severity, timeout=8)

    def on_connection_state(self, message: cm.ConnectionStateMessage) -> None:
        event = message.event
        if event.state == "lost" and not self.app.quitting:
            name = self.instance_name(event.instance_id)
            self.notify(f"SSH connection to {name} lost ({event.error}). It is made again on the next action; "
                        "tunnels reconnect by themselves.", title=f"SSH · {name}", severity="warning")

    def on_background_failed(self, message: cm.BackgroundFailedMessage) -> None:
        event = message.event
        where = f" · {self.instance_name(event.instance_id)}" if event.instance_id else ""
        self.notify(event.message, title=f"Background work failed{where}", severity="warning", timeout=15)

    def on_host_keys_unpinned(self, message: cm.HostKeysUnpinnedMessage) -> None:
        self.notify(message.event.message, title=f"Host key · {message.event.name}", severity="warning", timeout=20)

    def on_host_key_question(self, message: cm.HostKeyQuestionMessage) -> None:
        from tui.ui.screens.hostkey import HostKeyScreen

        q = message.event
        if self.app.quitting:
            q.refuse()
            return

        def answered(trust: bool | None) -> None:
            q.accept() if trust else q.refuse()

        self.app.push_screen(HostKeyScreen(self.instance_name(q.instance_id), q.host, q.port, q.key_type,
                                           q.fingerprint), answered)

    def on_idle_nudge(self, message: cm.IdleNudgeMessage) -> None:
        nudge = message.event
        snooze = self.app.get_key_display(Binding(self.app._keymap.get("snooze", "z"), ""))
        self.notify(f"{nudge.message}\nPress {nudge.key} on it to act, or {snooze} to snooze for a day.",
                    title=f"Idle · {self.instance_name(nudge.instance_id)}", severity="warning", timeout=20)
