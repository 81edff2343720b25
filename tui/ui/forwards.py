"""The user's own forwards in the app (issue 22): `a` adds one (a dialog with the ports the VM listens on),
`space` opens or closes the selected one, `delete` closes it — asking first before forgetting a saved one. Saved
forwards that are closed stay listed in the Tunnels pane ("off").

An owner object: the App makes one and its actions only delegate here. Remote work runs in the app's async
workers (`run_remote`), through the engine's `engine.forwards`."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from tui.core.forwards import Forward, label_of

if TYPE_CHECKING:
    from tui.core.api import Engine
    from tui.core.models import Instance, TunnelInfo
    from tui.ui.app import CadesApp

OFF = "off (space opens)"  # the state shown for a saved forward that is closed
ELSEWHERE = "open in another cades-tui"
REFRESH_S = 5.0  # the saved forwards are read again at most this often for the pane (and after every change)


class Forwards:
    def __init__(self, app: CadesApp) -> None:
        self.app = app
        self._known: list[Forward] = []
        self._read_at: datetime | None = None
        self._saved: set[tuple[str, str]] | None = None  # (instance, label) of the saved forwards at the last read

    # -- what the Tunnels pane shows -----------------------------------------------------------------------------

    def rows(self, tunnels: list[TunnelInfo], now: datetime) -> list[TunnelInfo]:
        """The open tunnels, and a row for each saved forward not open here (off, or served elsewhere)."""
        from tui.core.models import TunnelInfo, TunnelState

        engine = self.app.engine
        if engine is not None and (self._read_at is None or (now - self._read_at).total_seconds() >= REFRESH_S):
            self.refresh(engine, now)
        shown = {t.key for t in tunnels}
        extra = [TunnelInfo(f.instance, f.local_port, f.remote_host, f.remote_port, TunnelState.DOWN, now,
                            f.bytes_in or 0, f.bytes_out or 0, OFF if f.state == "closed" else ELSEWHERE,
                            f.purpose)
                 for f in self._known if (f.instance, f.purpose) not in shown and f.state != "up"]
        return [*tunnels, *extra]

    def refresh(self, engine: Engine, now: datetime | None = None, follow: bool = True) -> None:
        """Read the forwards again; with `follow`, follow what another cades-tui changed in the saved ones meanwhile
        (`forward NAME PORT --save` opens here within seconds, `forward close` closes here)."""
        self._known = engine.forwards.all()
        self._read_at = now or self.app.clock()
        saved = {(f.instance, f.label) for f in self._known if f.saved}
        before, self._saved = self._saved, saved
        if before is None or not follow:  # the first read: the app's reattach opens the saved forwards
            return
        for f in self._known:
            if (f.instance, f.label) in saved - before and f.enabled and f.state == "closed":
                self._follow(engine, f, open_it=True)
        for iid, label in before - saved:
            live = self.app.fleet.get(iid)
            if live is not None and live.tunnel(f"forward:{label}") is not None:
                self._follow(engine, Forward(iid, live.name, label, "", 0, 0, saved=False, enabled=False,
                                             state="up"), open_it=False)

    def _follow(self, engine: Engine, f: Forward, *, open_it: bool) -> None:
        live = self.app.fleet.get(f.instance)
        if live is None or live.instance is None:
            return
        inst = live.instance

        async def job(engine: Engine, inst: Instance) -> str | None:
            if open_it:
                fwd = await engine.forwards.open(inst, f.remote_port, local_port=f.local_port or None, label=f.label,
                                                remote_host=f.remote_host, save=True)
                return f"Saved elsewhere, now open here: {fwd.url} → {inst.name}:{fwd.remote_port} ({f.label})."
            await engine.forwards.close(inst.id, f.label, remove=False)
            return f"Forward {f.label} was forgotten by another cades-tui: closed here."

        self.app.jobs.run(f"forward {f.label}", job, inst)

    def _changed(self) -> None:
        engine = self.app.engine
        if engine is not None:
            self.refresh(engine, follow=False)  # (this app's own change)
        self.app.tunnels.render()

    # -- actions -------------------------------------------------------------------------------------------------

    def add(self) -> None:
        """A dialog for the selected instance (Instances pane); the forward is opened and kept."""
        from tui.ui.screens.forward import ForwardDialog

        async def job(engine: Engine, inst: Instance) -> str | None:
            request = await self.app.push_screen_wait(ForwardDialog(inst.name,
                                                                    lambda: engine.forwards.suggestions(inst)))
            if request is None:
                return None
            try:
                fwd = await engine.forwards.open(inst, request.remote_port, local_port=request.local_port,
                                                label=request.label, remote_host=request.remote_host, save=True)
            finally:
                self._changed()
            note = f" ({fwd.taken_note()})" if fwd.port_taken else ""
            return f"Forwarding {fwd.url} → {inst.name}:{fwd.remote_port} ({fwd.label}){note}; kept for next time."

        self.app.jobs.run("forward", job)

    def _selected(self) -> tuple[Instance, str] | None:
        """The selected row's instance and forward label; says what to do when it is not a user forward."""
        key = self.app.tunnels.selected_tunnel()
        if key is None:
            self.app.notify("No tunnel selected (Tunnels pane, arrow keys).", severity="warning")
            return None
        live = self.app.fleet.get(key[0])
        label = label_of(key[1])
        if label is None:
            self.app.notify("Space opens or closes your own forwards (a adds one); Jupyter's tunnel: t opens it, "
                            "delete closes it.", severity="warning")
            return None
        if live is None or live.instance is None:
            self.app.notify("That instance is not listed now.", severity="warning")
            return None
        return live.instance, label

    def toggle(self) -> None:
        picked = self._selected()
        if picked is None:
            return
        inst, label = picked

        async def job(engine: Engine, inst: Instance) -> str | None:
            try:
                fwd = await engine.forwards.toggle(inst, label)
            finally:
                self._changed()
            if fwd is None:
                return f"Forward {label} closed; kept (space opens it again)."
            note = f" ({fwd.taken_note()})" if fwd.port_taken else ""
            return f"Forwarding {fwd.url} → {inst.name}:{fwd.remote_port} ({label}){note}."

        self.app.jobs.run("forward", job, inst)

    def close(self, instance_id: str, label: str) -> None:
        """`delete` on a user forward: close it; a saved one is forgotten too, after asking."""
        from tui.ui.screens.confirm import Confirm

        known = next((f for f in self._known if (f.instance, f.label) == (instance_id, label)), None)
        name = self.app.fleet.name(instance_id)
        engine = self.app.engine
        if engine is None:
            return

        async def close() -> None:
            from tui.ui import messages as msg

            if known is not None and known.saved and not await self.app.push_screen_wait(Confirm(
                    f"Remove the saved forward {label} of {name}?", _removal(known), "Remove", danger=True)):
                self.app.post_message(msg.RemoteResult("forward", name, "Cancelled; nothing changed."))
                return
            try:
                await engine.forwards.close(instance_id, label, remove=True)
            finally:
                self._changed()
            self.app.post_message(msg.RemoteResult("forward", name, f"Forward {label} closed"
                                                   + (" and forgotten." if known is not None and known.saved else ".")))

        self.app.run_worker(close(), group=f"forward-close:{instance_id}:{label}", exit_on_error=False,
                            name=f"close the forward {label} of {name}")


def _removal(known: Forward) -> str:
    """What removing a saved forward loses."""
    return (f"It closes now and is no longer opened by the app or on reattach (127.0.0.1:{known.local_port or '…'} "
            f"→ {known.remote_host}:{known.remote_port}). What it reaches keeps running on the VM. Space only closes "
            "it and keeps it.")
