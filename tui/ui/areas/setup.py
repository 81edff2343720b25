"""Setup: the guide's install-and-configure pipeline on the selected instance, streamed into the Setup log pane;
a running setup can be cancelled from the keyboard, and quitting asks while one runs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tui.ui.areas.base import Owner, api

if TYPE_CHECKING:
    from tui.core.api import Engine
    from tui.core.models import Instance
    from tui.ui import core_messages as cm


class Setup(Owner):
    def start(self) -> None:
        inst = self.selected_instance()
        if inst is None:
            return
        self.app.setup_pane.begin(inst.name, time.monotonic())
        self.app.setup_pane.log_view.focus()

        async def job(engine: Engine, inst: Instance) -> str | None:
            result = await engine.run_setup(inst, approve_format=self._approve_format)
            if not result.ok:
                raise api.ManagerError(result.summary)
            return result.summary

        self.app.jobs.run("setup", job, inst)

    def running(self) -> list[str]:
        """Names of the instances with a setup running now."""
        return [self.instance_name(iid) for iid in self.app.jobs.running_on("setup")]

    def cancel(self) -> None:
        """Cancel the running setup(s): the SSH session ends, so does the step's command on the VM."""
        running = self.app.jobs.cancel("setup")
        if not running:
            self.notify("No setup is running.", severity="warning")
            return
        for iid in running:
            self.app.setup_pane.cancelled(self.instance_name(iid), time.monotonic())
        names = ", ".join(self.instance_name(iid) for iid in running)
        self.notify(f"Setup on {names} cancelled. Press s to run it again: finished steps are skipped.",
                    title="Setup", severity="warning")

    async def _approve_format(self, device: str, size: str) -> bool:
        from tui.ui.screens.confirm import Confirm

        answer = await self.app.push_screen_wait(Confirm(
            f"Format {device} ({size})?", f"The attached volume {device} is empty (no filesystem). Setup can format "
            "it as ext4 and mount it for your data. Formatting erases anything on it.", "Format", danger=True))
        return bool(answer)

    def on_setup_progress(self, message: cm.SetupProgressMessage) -> None:
        from tui.core.events import OutputLines, PipelineFinished, Reconnecting, StepFinished, StepStarted

        progress = message.event
        pane, t, event = self.app.setup_pane, progress.at, progress.event
        name = self.instance_name(progress.instance_id)
        if pane.instance != name:
            pane.begin(name, t)
        if isinstance(event, OutputLines):
            pane.output(event.step, list(event.lines), t)
        elif isinstance(event, StepStarted):
            pane.step_started(event.step, event.index, event.total, event.description, t)
        elif isinstance(event, StepFinished):
            pane.step_finished(event.result, t)
        elif isinstance(event, Reconnecting):
            pane.reconnecting(event.step, event.attempt, event.error, t)
        elif isinstance(event, PipelineFinished):
            pane.finished(event.summary, event.ok, event.results, t)
