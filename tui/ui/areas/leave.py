"""Leaving: quit (asks first while a setup or cluster work runs, says what keeps running), closing the core's
connections on the way out, and Ctrl+C on every screen and dialog — copy the selected text when there is some; else
cancel what runs (setups, cluster work); when nothing runs, ask to quit (and on that question, Ctrl+C again quits)."""

from __future__ import annotations

import asyncio
import contextlib

from tui.core.hints import command
from tui.ui.areas.base import Owner, work

QUIT_ASK = "quit-ask"  # the id of the "Quit cades-tui?" dialog Ctrl+C opens (Ctrl+C on it quits)


class Leave(Owner):
    def interrupt(self) -> None:
        app = self.app
        selected = getattr(app.focused, "selected_text", "") or app.screen.get_selected_text()
        if selected:
            app.copy_to_clipboard(selected)
        elif app.screen.id == QUIT_ASK:
            app.screen.dismiss(True)
        elif app.setup.running():
            app.setup.cancel()
        elif app.clusters.running_work():
            app.clusters.cancel_work()
        else:
            self.quit(ask=True)

    @work(group="quit", exclusive=True, exit_on_error=False, name="quit")
    async def quit(self, ask: bool = False) -> None:
        """Leave; while a setup runs, ask first (quitting cancels it); with `ask` (Ctrl+C), ask anyway."""
        from tui.ui.screens.confirm import Confirm

        app = self.app
        setups, clusters = app.setup.running(), app.clusters.running_work()
        if ask and not setups and not clusters and not await app.push_screen_wait(Confirm(
                "Quit cades-tui?", "Instances, Jupyter and Dask clusters keep running; tunnels re-open on the next "
                "start. Ctrl+C again quits.", "Quit", screen_id=QUIT_ASK)):
            return
        if setups and not await app.push_screen_wait(Confirm(
                f"Quit while setup runs on {', '.join(setups)}?",
                "Quitting cancels the setup: the step running now stops. Press s on the instance later to run it "
                "again (finished steps are skipped).", "Quit", danger=True)):
            return
        if clusters and not await app.push_screen_wait(Confirm(
                f"Quit while cluster work runs on {', '.join(clusters)}?",
                "Quitting stops it half-way: instances already launched and sessions already started stay. Press k "
                "on the head later and create again: what exists is adopted, the rest is done.", "Quit",
                danger=True)):
            return
        running, clusters = self.fleet.running_jupyter(), app.clusters.running()
        await self.close()
        parts = []
        if running:
            parts.append(f"Jupyter keeps running on {', '.join(running)}; its tunnels are closed. "
                         "Start cades-tui again to reattach (tunnels re-open), or stop it with "
                         f"`{command('jupyter', 'stop', 'NAME')}`.")
        if clusters:
            parts.append(f"The Dask cluster on {', '.join(clusters)} keeps running: k on its head shows it again, "
                         f"`{command('cluster', 'delete', 'HEAD')}` ends it.")
        app.exit(message="\n".join(parts) or None)

    async def close(self) -> None:
        """Stop the timers and close the core (its SSH connections and tunnels), at most 10 s."""
        app = self.app
        app.quitting = True
        for timer in (app.remote.idle_timer, app.polling.timer, app.polling.watchdog):
            if timer is not None:
                timer.stop()
        engine, app.engine = app.engine, None
        if engine is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(engine.aclose(), 10)
