"""The main screen's tables: Instances, Flavors, Tunnels. They render models they are given (`show(...)`).

Mounted into their panes right after the first frame (see `tui.ui.widgets.panes`): DataTable is the costliest
widget to import and mount, and a table has nothing to show before the cloud answers anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import humanize
from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual._two_way_dict import TwoWayDict
from textual.binding import Binding
from textual.geometry import Size
from textual.widget import Widget
from textual.widgets import DataTable
from textual.widgets.data_table import Column, ColumnKey, Row, RowDoesNotExist, RowKey

from tui.core.events import Metrics
from tui.core.forwards import label_of
from tui.core.live import Fleet, InstanceLive
from tui.core.models import Family, Flavor, Instance, Quota, TunnelInfo, TunnelState
from tui.ui.widgets.fastcells import OneLineCells
from tui.ui.widgets.format import mb, short_age, short_duration, status_text


def add_columns(table: DataTable[Text | str], *columns: tuple[str, str]) -> None:
    """(label, key) columns, in order."""
    for label, key in columns:
        table.add_column(label, key=key)


def fit_columns(table: DataTable[Text | str], *keys: str, widths: dict[str, int] | None = None) -> None:
    """Size these auto-width columns to what they show now: DataTable only ever widens a column, so one long
    value ("BUILD (spawning)") would keep it wide — and push the last columns out of view — for good. `widths`:
    the widest cell per column where the caller knows it (else each cell is measured)."""
    for key in keys:
        column = table.columns.get(key)  # type: ignore[call-overload]
        if column is None or table.row_count == 0:
            continue
        widest = widths[key] if widths is not None else max(
            x.cell_len if isinstance(x, Text) else cell_len(str(x)) for x in table.get_column(key))
        width = max(column.label.cell_len, widest)
        if width < column.content_width:
            column.content_width = width
            row = table.coordinate_to_cell_key((0, 0)).row_key  # type: ignore[arg-type]
            table.update_cell(row, key, table.get_cell(row, key), update_width=True)  # re-lays the table out


def measure_columns(table: DataTable[Text | str]) -> None:
    """Widen the columns to the rows just added, now: DataTable measures them on its next idle, and a frame drawn
    before that (the pane resizing, the cursor moving) caches each cell at its label's width ("c1.s", "com") —
    drawn so for good when measuring does not resize the table (a pane of fixed height)."""
    for key, column in table.columns.items():
        widths = [x.cell_len if isinstance(x, Text) else cell_len(str(x)) for x in table.get_column(key)]
        column.content_width = max([column.content_width, *widths])


@dataclass(eq=False)
class Hideable(Column):
    """A column the table may hide (render width 0) when the columns do not fit: see `fit_by_priority`."""

    hidden: bool = False

    def get_render_width(self, data_table: DataTable[Any]) -> int:
        return 0 if self.hidden else super().get_render_width(data_table)


def make_hideable(table: DataTable[Text | str], *keys: str) -> None:
    """These columns (added already) may be hidden by `fit_by_priority`."""
    for key in keys:
        c = table.columns[ColumnKey(key)]
        table.columns[c.key] = Hideable(c.key, c.label, c.width, c.content_width, c.auto_width)


def fit_by_priority(table: DataTable[Text | str], drop: Iterable[str]) -> None:
    """Columns wider than the table: hide the least needed ones, in `drop` order (Hideable columns), until the rest
    fit — only then is the last column cut with an ellipsis (`fit_last_column`); shown again when there is room.
    What is hidden is in the details (enter)."""
    room = table.scrollable_content_region.width
    if room <= 0 or not table.columns:
        return
    *_, last = table.columns.values()
    pad = 2 * table.cell_padding

    def full(c: Column) -> int:
        return pad + (c.content_width if c.auto_width or c is last else c.width)

    total = sum(full(c) for c in table.columns.values())
    hide = set()
    for key in drop:
        column = table.columns.get(ColumnKey(key))
        if total <= room:
            break
        if isinstance(column, Hideable):
            hide.add(key)
            total -= full(column)
    changed = False
    for ckey, column in table.columns.items():
        if isinstance(column, Hideable) and column.hidden != (ckey.value in hide):
            column.hidden, changed = ckey.value in hide, True
    if changed:  # every line drawn anew at the new widths
        table._update_count += 1
        width = sum(c.get_render_width(table) for c in table.columns.values())
        table.set_reactive(Widget.virtual_size, Size(width, table.virtual_size.height))
        table.refresh(layout=True)


def fit_last_column(table: DataTable[Text | str]) -> None:
    """Columns wider than the table: the least needed are hidden first (`DROP_ORDER` of the table, if any), then
    the last one gets what is left, its label and cells ending with an ellipsis (Text cells made so), instead of
    running past the edge; back to its full width when there is room."""
    if not table.columns or table.size.width == 0:
        return
    fit_by_priority(table, getattr(table, "DROP_ORDER", ()))
    *others, last = table.columns.values()
    room = table.scrollable_content_region.width - sum(c.get_render_width(table) for c in others)
    room -= 2 * table.cell_padding
    fits = room >= last.content_width
    if fits == last.auto_width and (fits or last.width == max(1, room)):
        return
    last.auto_width, last.width = fits, max(1, room)
    if table.row_count:  # redrawn at the new width (DataTable caches cells until a cell changes)
        row = table.coordinate_to_cell_key((0, 0)).row_key  # type: ignore[arg-type]
        table.update_cell(row, last.key, table.get_cell(row, last.key), update_width=True)
    table.refresh(layout=True)


def same_as(cell: Text | str) -> tuple[object, ...]:
    """What a cell shows, comparable: text, base style and spans (a Text's `==` leaves out its base style)."""
    return (cell.plain, str(cell.style), tuple(cell.spans)) if isinstance(cell, Text) else (cell,)


def cut(text: str | Text) -> Text:
    """A cell (or label) that ends with an ellipsis when its column is narrower than it."""
    cell = text.copy() if isinstance(text, Text) else Text(text)
    cell.no_wrap, cell.overflow = True, "ellipsis"
    return cell


def cursor_key(table: DataTable[Text | str]) -> str | None:
    """The key of the row under the cursor; None on an empty table."""
    if table.row_count == 0:
        return None
    try:
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except RowDoesNotExist:
        return None


class InstancesTable(OneLineCells):
    """Instances, one row per server keyed by its id (the cursor stays on the same server). It observes the live
    state: rows are redrawn when their instance changed, and all of them once a minute (uptime)."""

    BINDINGS = [
        Binding("enter", "app.details", "Details", id="details",
                tooltip="Flavor, image, volumes, addresses, key pair and uptime of the selected instance"),
    ]

    # Where the pane is narrow (120 columns: two panes side by side) Uptime, then Flavor are hidden first; then the
    # IP, last, is the column cut with an ellipsis — never Jupyter or Load·Mem. Enter shows everything.
    COLUMNS = ("name", "status", "flavor", "uptime", "jupyter", "load", "ip")
    DROP_ORDER = ("uptime", "flavor")

    def __init__(self) -> None:
        super().__init__(id="instances-table", cursor_type="row", zebra_stripes=True)
        self.instances: dict[str, Instance] = {}  # every instance (the filter hides rows, not instances)
        self.filter_text = ""  # lower case; rows whose name, status, flavor or IP contain it
        self.typed = ""  # the filter as typed
        self.filtering = False  # typing goes into the filter (after `/`, until enter or escape)
        self._rows: list[str] = []  # the ids shown, in order
        self._cells: dict[str, tuple[Text | str, ...]] = {}  # what each row shows: only differing cells update
        self._made: dict[str, tuple[Text | str, ...]] = {}  # each instance's cells, shown or not
        self._widths: dict[str, tuple[int, ...]] = {}  # each instance's cells' widths, made with them
        self._hay: dict[str, str] = {}  # what the filter looks in, per instance, made with its cells
        self._order: tuple[int, list[InstanceLive]] | None = None  # the live state's version, its instances sorted
        self._row_objects: dict[str, tuple[RowKey, Row]] = {}  # each instance's row key and Row
        self._row_data: dict[str, tuple[tuple[Text | str, ...], dict[ColumnKey, Text | str]]] = {}  # cells -> dict
        self._seen = -1  # the live state's version last drawn
        self._minute = -1
        self._last: tuple[Fleet, datetime] | None = None

    def on_mount(self) -> None:
        add_columns(self, ("Name", "name"), ("Status", "status"), ("Flavor", "flavor"), ("Uptime", "uptime"),
                    ("Jupyter", "jupyter"), ("Load·Mem", "load"))
        self.add_column(cut("IP"), key="ip")
        make_hideable(self, *self.DROP_ORDER)

    def on_resize(self) -> None:
        fit_last_column(self)

    @property
    def selected(self) -> Instance | None:
        return self.instances.get(cursor_key(self) or "")

    def show(self, fleet: Fleet, now: datetime) -> None:
        """Draw the live state: rows in place when the same instances are shown (only the cells that differ
        are updated — with 1,000 servers a poll that changed nothing touches nothing), else all rows anew. Each
        instance's cells are made when it changes (and once a minute), shown or filtered out: a filter key only
        picks rows."""
        self._last = (fleet, now)
        if self._order is None or self._order[0] != fleet.version:  # a filter key re-shows the same state
            self._order = (fleet.version, sorted((x for x in fleet.live.values() if x.instance is not None),
                                                 key=lambda x: (x.name.lower(), x.id)))
        lives = self._order[1]
        self.instances = {x.id: x.instance for x in lives if x.instance is not None}
        minute = int(now.timestamp() // 60)
        stale = {x.id for x in fleet.changed(self._seen)} if minute == self._minute else None
        old, made = self._made, {}
        for x in lives:
            row = old.get(x.id) if stale is not None and x.id not in stale else None
            if row is None:
                row = cells(x, now)
                self._widths[x.id] = tuple(cell_len(c.plain if isinstance(c, Text) else c) for c in row)
                self._hay[x.id] = _haystack(x)
            made[x.id] = row
        self._made = made
        if len(self._widths) > 2 * len(made):  # instances gone
            self._widths = {k: self._widths[k] for k in made}
            self._hay = {k: self._hay[k] for k in made}
        if self.filter_text:
            lives = [x for x in lives if self.filter_text in self._hay[x.id]]
        if self._rows == [x.id for x in lives]:
            self._update_rows([x.id for x in lives if made[x.id] is not self._cells.get(x.id)], made)
        else:
            current = cursor_key(self)
            self._refill({x.id: made[x.id] for x in lives})
            if current is not None and current in self._cells:
                self.move_cursor(row=self._rows.index(current), animate=False)
        if self._rows:
            fit_columns(self, "status", "jupyter", "ip", widths={
                key: max(self._widths[iid][self.COLUMNS.index(key)] for iid in self._rows)
                for key in ("status", "jupyter", "ip")})
        fit_last_column(self)
        self._seen, self._minute = fleet.version, minute
        if self.filter_text or self.filtering:
            self._show_filter()  # the count shown

    def _update_rows(self, changed: list[str], made: dict[str, tuple[Text | str, ...]]) -> None:
        """These rows' cells that differ, in place, as one update (once a minute every uptime changes)."""
        columns = [column.key for column in self.ordered_columns]
        self.replace_cells((iid, columns[i], value) for iid in changed
                           for i, (value, old) in enumerate(zip(made[iid], self._cells[iid], strict=True))
                           if value is not old and same_as(value) != same_as(old))
        for iid in changed:
            self._cells[iid] = made[iid]
            if iid in self._row_data:
                self._row_data[iid] = (made[iid], self._row_data[iid][1])

    def _refill(self, rows: dict[str, tuple[Text | str, ...]]) -> None:
        """`clear()` then `add_row` for each row, without add_row's work per row (the cursor re-validated, an
        update counted, a prompt posted: 60 ms for 1,000 rows, on each filter key). Rows as add_row makes them
        (height 1, no label), their keys, `Row`s and cell dicts kept per instance for the next filter key; what
        add_row does once a row exists is done once. (Fills private structures of Textual's DataTable, as
        `_update_dimensions` below reads them.)"""
        self.clear()
        self._cells, self._rows = rows, list(rows)
        columns = [column.key for column in self.ordered_columns]
        made, data = self._row_objects, self._row_data
        if len(made) > 2 * len(self.instances) + 100:  # instances gone
            self._row_objects = made = {k: v for k, v in made.items() if k in self.instances}
            self._row_data = data = {k: v for k, v in data.items() if k in self.instances}
        locations: dict[RowKey, int] = {}
        for index, (iid, row) in enumerate(rows.items()):
            objects = made.get(iid)
            if objects is None:
                key = RowKey(iid)
                objects = made[iid] = (key, Row(key, 1))
            cells_of = data.get(iid)
            if cells_of is None or cells_of[0] is not row:
                cells_of = data[iid] = (row, dict(zip(columns, row, strict=True)))
            key = objects[0]
            locations[key] = index
            self._data[key] = cells_of[1]
            self.rows[key] = objects[1]
        self._row_locations = TwoWayDict(locations)
        self._new_rows.update(locations)
        self._widen(rows)
        self._require_update_dimensions = True
        self._update_count += 1
        self.cursor_coordinate = self.cursor_coordinate
        if rows and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()
        self.check_idle()

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """DataTable measures each new cell through Rich (`console.options` + `__rich_measure__`, ~35 µs: 0.25 s
        for 1,000 rows × 7 columns, on every refill). Our cells are one-line `Text`/`str`, whose width is their
        cell length: measured so, then the virtual size set as DataTable sets it. (Overrides a private method of
        Textual's DataTable; rows it does not know fall back to it.)"""
        unknown: list[str] = []
        known: list[str] = []
        for row_key in new_rows:
            iid = str(row_key.value)
            (known if row_key in self.rows and iid in self._widths else unknown).append(iid)
        self._widen(known)
        if unknown:
            super()._update_dimensions([RowKey(iid) for iid in unknown])
            return
        width = sum(column.get_render_width(self) for column in self.columns.values())
        size = Size(width + self._row_label_column_width,
                    self._total_row_height + (self.header_height if self.show_header else 0))
        if size != self.virtual_size:
            # Not `self.virtual_size = size`: a layout reactive, it re-lays the whole screen out and redraws every
            # widget (~20 ms) on each filter key. The table's own size does not depend on its rows: only its
            # scrollbars are updated — and should one appear or go, that is a layout (`show_*_scrollbar`).
            self.set_reactive(Widget.virtual_size, size)
            self._scroll_update(size)
            self.refresh()
        fit_last_column(self)  # a column widened: the last one may have less room now

    def _widen(self, iids: Iterable[str]) -> None:
        """Widen the columns to these rows' cells, now (DataTable measures new rows on its next idle: a frame
        drawn before that, or `fit_last_column` run before it, would see the columns at their labels' widths)."""
        known = [self._widths[iid] for iid in iids]
        for column, width in zip(self.ordered_columns, map(max, zip(*known, strict=True)) if known else (),
                                 strict=False):
            if width > column.content_width:
                column.content_width = width

    # -- the `/` filter ----------------------------------------------------------------------------------------
    def open_filter(self) -> None:
        """Start typing a filter: it shows in the pane's bottom border. No widget is mounted and focus stays here
        — a new widget, a focus change (the footer recomposes) or a resized table (every row re-measured) would
        each cost a key press ~100 ms with 1,000 rows."""
        self.focus()
        self.filtering = True
        self._show_filter()

    def on_key(self, event: events.Key) -> None:
        """While filtering the table takes the typing — text entry, not a key dispatcher (actions stay bindings):
        characters and backspace edit the filter, enter keeps it, escape clears it; the cursor keys still move
        through the rows shown."""
        if not self.filtering:
            return
        if event.key == "escape":
            self.filtering = False
            self.set_filter("")
        elif event.key == "enter":
            self.filtering = False
        elif event.key == "backspace":
            self.set_filter(self.typed[:-1])
        elif event.is_printable and event.character:
            self.set_filter(self.typed + event.character)
        else:
            return
        event.stop()
        event.prevent_default()
        self._show_filter()

    def set_filter(self, text: str) -> None:
        """Show only the rows containing `text` (any case) in their name, status, flavor or IP; "" shows all."""
        self.typed = text
        needle = text.strip().lower()
        if needle == self.filter_text:
            return
        self.filter_text = needle
        if self._last is not None:
            self.show(*self._last)

    def _show_filter(self) -> None:
        pane = self.parent
        if not isinstance(pane, Widget):
            return
        if self.filtering:
            pane.border_subtitle = f"/{self.typed}▏ {len(self._rows)} shown · enter keeps · esc clears"
        elif self.filter_text:
            shown = f"{len(self._rows)} of {len(self.instances)}"
            pane.border_subtitle = f"filter: {self.typed.strip()} · {shown} · / edits"
        else:
            pane.border_subtitle = ""


def _haystack(x: InstanceLive) -> str:
    inst = x.instance
    assert inst is not None
    return f"{inst.name}\t{inst.status}\t{inst.flavor_name}\t{inst.ip}".lower()


def cells(x: InstanceLive, now: datetime) -> tuple[Text | str, ...]:
    """One instance's row: what the cloud says, then Jupyter (and SSH trouble), then its load and memory."""
    inst = x.instance
    assert inst is not None
    status = status_text("DELETING" if x.deleting else inst.status) if x.deleting or not inst.task_state \
        else Text(f"{inst.task_state}…", style="yellow italic")  # the task alone, short ("deleting…"); enter: both
    if inst.shelved:  # nothing runs on it: no Jupyter, SSH or load to show (the last ones read are stale)
        return (Text(inst.name, style="bold"), status, inst.flavor_name, "–", Text("–", style="dim"),
                Text("–", style="dim"), cut(inst.ip or "–"))
    return (Text(inst.name, style="bold"), status, inst.flavor_name, short_duration(inst.uptime_seconds(now)),
            remote_cell(x), load_cell(x.signal(Metrics)), cut(inst.ip or "–"))


def load_cell(m: Metrics | None) -> Text:
    """1-minute load per vCPU and memory in use, e.g. "0.4·63%"; red when the VM is saturated."""
    if m is None:
        return Text("–", style="dim")
    hot = m.load1 >= 1.0 or m.mem_used_pct >= 90
    return Text(f"{m.load1:.1f}·{m.mem_used_pct:.0f}%", style="bold red" if hot else "")


JUPYTER_WORD = {"running": ("running", "green"), "starting": ("starting…", "yellow"),
                "stopping": ("stopping…", "yellow"), "stopped": ("stopped", "dim"), "error": ("✗ error", "red")}


def remote_cell(x: InstanceLive) -> Text:
    cell = Text("–", style="dim")
    if x.jupyter is not None:
        word, style = JUPYTER_WORD[x.jupyter.state]
        cell = Text(word, style=style)
    if x.ssh == "lost":
        cell.append(" ⚠ ssh lost", style="yellow")
    elif x.ssh == "failed":
        cell.append(" ✗ ssh", style="bold red")
    return cell


class FlavorsTable(OneLineCells):
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
        measure_columns(self)
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


def tunnel_state(t: TunnelInfo) -> str:
    """"up", "reconnecting"..., or why it is down ("down: moved/stopped" when Jupyter went away)."""
    if t.state is TunnelState.DOWN and t.error.startswith(("off", "open in")):  # a user forward not open here
        return t.error.split(" (")[0]
    if t.state is TunnelState.DOWN and t.error:
        return f"down: {t.error.removeprefix('Jupyter ') if t.purpose == 'jupyter' else t.error}"
    return t.state.value


class TunnelsTable(OneLineCells):
    """One row per tunnel — instance and purpose, local → remote port, state, for how long, bytes in/out — keyed by
    "instance id/purpose"."""

    BINDINGS = [
        Binding("delete,ctrl+w", "app.close_tunnel", "Close tunnel", id="tunnel.close",
                tooltip="Close the selected tunnel (Jupyter keeps running; t opens it again); a saved forward is "
                        "forgotten too, after asking"),
        Binding("a", "app.forward_add", "Forward port", id="forward.add",
                tooltip="Forward any port of the selected instance to 127.0.0.1 (its listening ports offered), "
                        "kept: opened again on every start"),
        Binding("space", "app.forward_toggle", "Open/close", id="forward.toggle",
                tooltip="Close the selected forward of yours (kept), or open it again"),
    ]

    DROP_ORDER = ("since",)  # hidden first when the row does not fit (a forward's label): the bytes stay in view

    def __init__(self) -> None:
        super().__init__(id="tunnels-table", cursor_type="row")
        self._shown: list[tuple[str, tuple[tuple[object, ...], ...]]] | None = None  # the rows drawn, comparable

    def on_mount(self) -> None:
        # narrow headers: at 120 columns the pane is ~57 wide and every column should fit
        add_columns(self, ("Instance", "instance"), ("Local → VM", "ports"), ("State", "state"), ("For", "since"))
        self.add_column(cut("In / out"), key="traffic")  # cut with an ellipsis where the pane is too narrow
        make_hideable(self, *self.DROP_ORDER)

    def on_resize(self) -> None:
        fit_last_column(self)

    @property
    def selected(self) -> tuple[str, str] | None:
        """(instance id, purpose) of the highlighted tunnel."""
        key = cursor_key(self)
        if key is None:
            return None
        iid, _, purpose = key.partition("/")
        return iid, purpose

    def show(self, tunnels: list[TunnelInfo], names: dict[str, str], now: datetime) -> None:
        """The tunnels' rows anew — unless they would be the same as shown: the app redraws on every poll and
        every Metrics event, and a refill re-lays the screen out (most of an idle app's CPU)."""
        rows: list[tuple[str, tuple[Text | str, ...]]] = []
        for t in sorted(tunnels, key=lambda t: (names.get(t.instance, t.instance), t.instance, t.purpose)):
            style = {TunnelState.UP: "green", TunnelState.DOWN: "red"}.get(t.state, "yellow")
            name = Text(names.get(t.instance, t.instance[:8]), style="bold")
            if t.purpose != "jupyter":
                label = label_of(t.purpose) or t.purpose
                name.append(f" {label if len(label) <= 12 else label[:11] + '…'}", style="dim")
            rows.append((f"{t.instance}/{t.purpose}", (
                name, f":{t.local_port} → :{t.remote_port}", Text(tunnel_state(t), style=style),
                short_age(t.since, now), cut(f"↓{humanize.naturalsize(t.bytes_in, gnu=True)} "
                                             f"↑{humanize.naturalsize(t.bytes_out, gnu=True)}"))))
        shown = [(key, tuple(map(same_as, row))) for key, row in rows]
        if shown == self._shown:
            return
        before, self._shown = self._shown, shown
        if before is not None and [k for k, _ in before] == [k for k, _ in shown] and self.row_count == len(rows):
            # the same tunnels (their bytes or age changed): the cells that differ, in place — a refill drops every
            # cached line and re-measures every cell, on each poll while a tunnel carries traffic
            columns = [column.key for column in self.ordered_columns]
            self.replace_cells((key, columns[i], value) for (key, row), (_, old) in zip(rows, before, strict=True)
                               for i, value in enumerate(row) if same_as(value) != old[i])
            fit_columns(self, "instance", "ports", "state", "since")
            fit_last_column(self)
            return
        current = self.selected
        self.clear()
        for key, row in rows:
            self.add_row(*row, key=key)
        measure_columns(self)
        fit_columns(self, "instance", "ports", "state", "since")  # narrower again when a long value is gone
        fit_last_column(self)
        if current is not None and current in {t.key for t in tunnels}:
            self.move_cursor(row=self.get_row_index("/".join(current)), animate=False)
