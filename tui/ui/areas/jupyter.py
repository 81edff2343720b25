"""Jupyter on the selected instance: start (in a detached screen session, with its tunnel), stop (asks when
kernels are busy; the exit is verified), the live log view, and the browser on the token URL."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from tui.core.hints import command
from tui.ui.areas.base import Owner, api, msg

if TYPE_CHECKING:
    from tui.core.api import Engine
    from tui.core.models import Instance
    from tui.ui import core_messages as cm
    from tui.ui.app import CadesApp
    from tui.ui.screens.jupyter_log import JupyterLogScreen


class Jupyter(Owner):
    def __init__(self, app: CadesApp) -> None:
        super().__init__(app)
        self.log_screen: JupyterLogScreen | None = None  # the open log view

    def start(self) -> None:
        async def job(engine: Engine, inst: Instance) -> str | None:
            self.post_message(msg.RemoteResult("jupyter", inst.name, "Starting Jupyter (or finding the running one)…"))
            await engine.jupyter.start(inst)
            return None  # its JupyterState says where it answers

        self.app.jobs.run("jupyter", job)

    def stop(self) -> None:
        async def job(engine: Engine, inst: Instance) -> str | None:
            from tui.ui.screens.confirm import Confirm

            outcome = await engine.jupyter.stop(inst)
            if not outcome.stopped:
                listing = "\n".join(f"• {k.name}" + (f" ({k.path})" if k.path else "") for k in outcome.busy)
                running = (f"These kernels are running code right now:\n{listing}" if not outcome.unknown else
                           f"Could not tell whether kernels are busy ({outcome.unknown}): some may be running code.")
                ok = await self.app.push_screen_wait(Confirm(
                    f"Stop Jupyter on {inst.name}? {outcome.asks[0].upper()}{outcome.asks[1:]}",
                    f"{running}\n\nStopping ends them: their work in "
                    "progress and everything in their memory is lost. Saved notebooks are kept.",
                    "Stop anyway", danger=True))
                if not ok:
                    return "Jupyter keeps running."
                await engine.jupyter.stop(inst, force=True)
            return f"Jupyter on {inst.name} is stopped (process and screen session gone); its tunnel is closed."

        self.app.jobs.run("stop jupyter", job)

    def log(self) -> None:
        inst = self.selected_instance()
        if inst is None:
            return
        from tui.ui.screens.jupyter_log import JupyterLogScreen

        live = self.fleet.get(inst.id)
        running = live is not None and live.jupyter is not None and live.jupyter.state == "running"
        screen = self.log_screen = JupyterLogScreen(inst.id, inst.name, running=running)

        def closed(_: object) -> None:
            self.log_screen = None
            if self.engine is not None:
                self.app.run_worker(self.engine.jupyter.unfollow_log(inst.id), group=f"unfollow:{inst.id}",
                                    exit_on_error=False, name=f"stop following the log of {inst.name}")

        self.app.push_screen(screen, closed)

        async def job(engine: Engine, inst: Instance) -> str | None:
            await engine.jupyter.follow_log(inst)
            return None

        self.app.jobs.run("log", job, inst)

    def open_browser(self) -> None:
        async def job(engine: Engine, inst: Instance) -> str | None:
            import webbrowser

            url = await engine.jupyter.token_url(inst)
            if url is None:
                raise api.ManagerError(f"the tunnel to {inst.name} is down; press t to open it again")
            self.app.copy_to_clipboard(url)
            opened = await asyncio.to_thread(webbrowser.open, url)
            where = "Opened in your browser; the" if opened else "No browser here: the"
            return (f"{mask_token(url)}\n{where} full URL with its token is on your clipboard (OSC 52). "
                    f"`{command('status', '--show-token')}` prints it too.")

        self.app.jobs.run("open", job)

    def on_jupyter_state(self, message: cm.JupyterStateMessage) -> None:
        state = message.event
        name = self.instance_name(state.instance_id)
        if state.state == "running" and state.error:
            self.notify(state.error, title=f"Tunnel · {name}", severity="warning")
        elif state.state == "running":
            where = state.public_url if state.local_port else f"port {state.remote_port} on the VM"
            tunnel = "" if state.local_port else " (no tunnel yet: press t, or o to open it in the browser)"
            self.notify(f"Jupyter answers at {where}{tunnel}\nPress o to open it (the token URL is copied too).",
                        title=f"Jupyter · {name}", timeout=10)
        elif state.state == "error":
            self.notify(state.error, title=f"Jupyter · {name}", severity="error", timeout=12)
        screen = self.log_screen
        if screen is not None and screen.is_attached and screen.instance_id == state.instance_id:
            screen.server_state(state.state)

    def on_log_lines(self, message: cm.LogLinesMessage) -> None:
        screen = self.log_screen
        if screen is not None and screen.is_attached and screen.instance_id == message.event.instance_id:
            screen.add(list(message.event.lines))


def mask_token(url: str) -> str:
    """The URL with its token shortened to 4 characters: safe to show on screen."""
    import re

    return re.sub(r"(token=)([^&#]{4})[^&#]*", r"\1\2…", url)
