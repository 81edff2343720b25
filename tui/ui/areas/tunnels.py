"""Tunnels: open one to the selected instance's Jupyter, close the selected one; the Tunnels pane observes the
live state (tunnels keyed by instance and purpose: Jupyter, the Dask dashboard, the user's forwards). The user's
forwards (add, toggle, close) are the owner object `tui.ui.forwards.Forwards`'s: these actions delegate to it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.ui.areas.base import Owner, msg

if TYPE_CHECKING:
    from tui.core.api import Engine
    from tui.core.models import Instance


class TunnelKeys(Owner):
    def selected_tunnel(self) -> tuple[str, str] | None:
        """(instance id, purpose) of the Tunnels pane's highlighted row, once the pane is built."""
        return self.app.tunnels_pane.table.selected if self.app.built else None

    def open(self) -> None:
        async def job(engine: Engine, inst: Instance) -> str | None:
            state = await engine.open_tunnel(inst)
            return f"Tunnel 127.0.0.1:{state.local_port} → port {state.remote_port} on {inst.name} is up."

        self.app.jobs.run("tunnel", job)

    def close(self) -> None:
        key = self.selected_tunnel()
        engine = self.engine
        if key is None or engine is None:
            self.notify("No tunnel selected (Tunnels pane, arrow keys).", severity="warning")
            return
        iid, purpose = key
        if purpose.startswith("forward:"):  # a user forward: closed (and, a saved one, forgotten after asking)
            self.app.user_forwards.close(iid, purpose.removeprefix("forward:"))
            return
        name = self.instance_name(iid)

        async def close() -> None:
            await engine.close_tunnel(iid, purpose)
            what = "Jupyter keeps running (t or o opens it again)" if purpose == "jupyter" else "what it reached " \
                "keeps running"
            self.post_message(msg.RemoteResult("tunnel", name, f"Tunnel closed; {what}."))

        self.app.run_worker(close(), group=f"tunnel-close:{iid}:{purpose}", exit_on_error=False,
                            name=f"close the {purpose} tunnel of {name}")

    def render(self) -> None:
        if self.app.built:
            names = {x.id: x.name for x in self.fleet.live.values()}
            now = self.app.clock()
            self.app.tunnels_pane.show(self.app.user_forwards.rows(self.fleet.tunnels(), now), names, now)
