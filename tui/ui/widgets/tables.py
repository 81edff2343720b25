"""The main screen's tables: Instances, Flavors, Tunnels. They render models they are given (`show(...)`).

Mounted into their panes right after the first frame (see `tui.ui.widgets.panes`): DataTable is the costliest
widget to import and mount, and a table has nothing to show before the cloud answers anyway.
"""

from __future__ import annotations

from datetime import datetime

import humanize
from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from tui.core.models import Family, Flavor, Instance, Quota, TunnelInfo, TunnelState
from tui.ui.widgets.format import mb, short_age, short_duration, status_text


def add_columns(table: DataTable[Text | str], *columns: tuple[str, str]) -> None:
    """(label, key) columns, in order."""
    for label, key in columns:
        table.add_column(label, key=key)


def cursor_key(table: DataTable[Text | str]) -> str | None:
    """The key of the row under the cursor; None on an empty table."""
    if table.row_count == 0:
        return None
    try:
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except RowDoesNotExist:
        return None


class InstancesTable(DataTable[Text | str]):
    """Instances, one row per server keyed by its id, so the cursor stays on the same server."""

    BINDINGS = [
        Binding("enter", "app.details", "Details", id="details",
                tooltip="Flavor, image, volumes, addresses, key pair and uptime of the selected instance"),
    ]

    COLUMNS = ("name", "status", "flavor", "ip", "uptime", "jupyter")

    def __init__(self) -> None:
        super().__init__(id="instances-table", cursor_type="row", zebra_stripes=True)
        self.instances: dict[str, Instance] = {}
        self.remote: dict[str, Text] = {}  # instance id -> Jupyter/SSH cell, kept across polls

    def on_mount(self) -> None:
        add_columns(self, ("Name", "name"), ("Status", "status"), ("Flavor", "flavor"), ("IP", "ip"),
                    ("Uptime", "uptime"), ("Jupyter", "jupyter"))

    def set_remote(self, instance_id: str, cell: Text) -> None:
        """The Jupyter column of one instance (its server's state, and SSH trouble when there is some)."""
        self.remote[instance_id] = cell
        if instance_id in self.instances:
            self.update_cell(instance_id, "jupyter", cell, update_width=True)

    @property
    def selected(self) -> Instance | None:
        return self.instances.get(cursor_key(self) or "")

    def show(self, instances: list[Instance], now: datetime) -> None:
        ordered = sorted(instances, key=lambda i: (i.name.lower(), i.id))
        current = self.selected
        old_ids = list(self.instances)
        self.instances = {i.id: i for i in ordered}
        if old_ids == [i.id for i in ordered]:
            for inst in ordered:  # same rows in the same order: update cells in place
                for column, value in zip(self.COLUMNS, self._cells(inst, now), strict=True):
                    self.update_cell(inst.id, column, value)
            return
        self.clear()
        for inst in ordered:
            self.add_row(*self._cells(inst, now), key=inst.id)
        if current is not None and current.id in self.instances:
            self.move_cursor(row=self.get_row_index(current.id), animate=False)

    def _cells(self, inst: Instance, now: datetime) -> tuple[Text | str, ...]:
        return (
            Text(inst.name, style="bold"),
            status_text(inst.status, inst.task_state),
            inst.flavor_name,
            inst.ip or "–",
            short_duration(inst.uptime_seconds(now)),
            self.remote.get(inst.id, Text("–", style="dim")),
        )


class FlavorsTable(DataTable[Text | str]):
    """Flavors with their m1/c1 family and whether they fit the remaining quota."""

    def __init__(self) -> None:
        super().__init__(id="flavors-table", cursor_type="row")
        self.flavors: dict[str, Flavor] = {}
        self._shown: tuple[tuple[Flavor, ...], Quota | None] | None = None

    def on_mount(self) -> None:
        add_columns(self, ("Name", "name"), ("vCPUs", "vcpus"), ("RAM", "ram"), ("Disk", "disk"), ("Fits", "fits"),
                    ("For", "hint"))

    @property
    def selected(self) -> Flavor | None:
        return self.flavors.get(cursor_key(self) or "")

    def show(self, flavors: list[Flavor], quota: Quota | None) -> None:
        if self._shown == (tuple(flavors), quota):
            return  # unchanged: keep the rows (and the user's scroll position) as they are
        self._shown = (tuple(flavors), quota)
        current = self.selected
        ordered = sorted(flavors, key=lambda f: (f.family.value, f.ram_mb, f.vcpus, f.name))
        self.flavors = {f.id: f for f in ordered}
        self.clear()
        for f in ordered:
            reasons = quota.misfit(f) if quota else []
            fits = Text("✗ " + short_misfit(f, quota), style="red") if reasons else Text("✓", style="green")
            style = "dim" if reasons else ""
            self.add_row(Text(f.name, style=style or "bold"), str(f.vcpus), mb(f.ram_mb),
                         f"{f.disk_gb} GB" if f.disk_gb else "–", fits,
                         Text(FAMILY_WORD.get(f.family, ""), style="dim"), key=f.id)
        if current is not None and current.id in self.flavors:
            self.move_cursor(row=self.get_row_index(current.id), animate=False)


FAMILY_WORD = {Family.MEMORY: "memory", Family.COMPUTE: "compute"}


def short_misfit(flavor: Flavor, quota: Quota | None) -> str:
    """Which quota a flavor exceeds, in a word or two ("RAM", "cores", "RAM+cores", "instances")."""
    if quota is None:
        return ""
    parts = []
    if flavor.ram_mb > quota.ram_mb_free:
        parts.append("RAM")
    if flavor.vcpus > quota.cores_free:
        parts.append("cores")
    if quota.instances_free < 1:
        parts.append("instances")
    return "+".join(parts)


class TunnelsTable(DataTable[Text | str]):
    """One row per instance's tunnel: name, local → remote port, state, for how long (humanized), bytes in/out."""

    BINDINGS = [
        Binding("delete,ctrl+w", "app.close_tunnel", "Close tunnel", id="tunnel.close",
                tooltip="Close the selected tunnel (Jupyter keeps running; t opens it again)"),
    ]

    def __init__(self) -> None:
        super().__init__(id="tunnels-table", cursor_type="row")

    def on_mount(self) -> None:
        # narrow headers: at 120 columns the pane is ~57 wide and every column should fit
        add_columns(self, ("Instance", "instance"), ("Local → VM", "ports"), ("State", "state"), ("For", "since"),
                    ("In / out", "traffic"))

    @property
    def selected(self) -> str | None:
        """The instance id of the highlighted tunnel."""
        return cursor_key(self)

    def show(self, tunnels: list[TunnelInfo], names: dict[str, str], now: datetime) -> None:
        current = self.selected
        self.clear()
        for t in sorted(tunnels, key=lambda t: (names.get(t.instance, t.instance), t.instance)):
            style = {TunnelState.UP: "green", TunnelState.DOWN: "red"}.get(t.state, "yellow")
            self.add_row(Text(names.get(t.instance, t.instance[:8]), style="bold"),
                         f":{t.local_port} → :{t.remote_port}",
                         Text(t.state.value, style=style),
                         short_age(t.since, now),
                         f"↓{humanize.naturalsize(t.bytes_in, gnu=True)} "
                         f"↑{humanize.naturalsize(t.bytes_out, gnu=True)}",
                         key=t.instance)
        if current is not None and current in {t.instance for t in tunnels}:
            self.move_cursor(row=self.get_row_index(current), animate=False)
