"""Tunnels: open one to the selected instance's Jupyter, close the selected one; the Tunnels pane observes the
live state (tunnels keyed by instance and purpose: Jupyter, the Dask dashboard, the user's forwards). The user's
forwards (add, toggle, close) are the owner object `tui.ui.forwards.Forwards`'s: these actions delegate to it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.ui.areas.base import Area, msg

if TYPE_CHECKING:
    from tui.core.api import Engine
    from tui.core.models import Instance
    from tui.ui.forwards import Forwards


class TunnelsArea(Area):
    user_forwards: Forwards  # set by CadesApp.__init__
    _built: bool

    def selected_tunnel(self) -> tuple[str, str] | None:
        """(instance id, purpose) of the Tunnels pane's highlighted row, once the pane is built."""
        return self._tunnels_pane.table.selected if self._built else None

    def action_forward_add(self) -> None:
        self.user_forwards.add()

    def action_forward_toggle(self) -> None:
        self.user_forwards.toggle()

    def action_open_tunnel(self) -> None:
        async def job(engine: Engine, inst: Instance) -> str | None:
            state = await engine.open_tunnel(inst)
            return f"Tunnel 127.0.0.1:{state.local_port} → port {state.remote_port} on {inst.name} is up."

        self.run_remote("tunnel", job)

    def action_close_tunnel(self) -> None:
        key = self.selected_tunnel()
        engine = self.engine
        if key is None or engine is None:
            self.notify("No tunnel selected (Tunnels pane, arrow keys).", severity="warning")
            return
        iid, purpose = key
        if purpose.startswith("forward:"):  # a user forward: closed (and, a saved one, forgotten after asking)
            self.user_forwards.close(iid, purpose.removeprefix("forward:"))
            return
        name = self.instance_name(iid)

        async def close() -> None:
            await engine.close_tunnel(iid, purpose)
            what = "Jupyter keeps running (t or o opens it again)" if purpose == "jupyter" else "what it reached " \
                "keeps running"
            self.post_message(msg.RemoteResult("tunnel", name, f"Tunnel closed; {what}."))

        self.run_worker(close(), group=f"tunnel-close:{iid}:{purpose}", exit_on_error=False,
                        name=f"close the {purpose} tunnel of {name}")

    def render_tunnels(self) -> None:
        if getattr(self, "_built", False):
            names = {x.id: x.name for x in self.fleet.live.values()}
            now = self.clock()
            self._tunnels_pane.show(self.user_forwards.rows(self.fleet.tunnels(), now), names, now)
