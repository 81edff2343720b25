"""The main screen's panes: Instances, Flavors, quota summary, Setup log, Tunnels.

Panes only render models they are given (`show(...)`); they never talk to the cloud.
"""

from __future__ import annotations

from datetime import datetime

import humanize
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Log, ProgressBar, Static
from textual.widgets.data_table import RowDoesNotExist

from tui.models import Family, Flavor, Instance, Quota, StepResult, StepStatus, TunnelInfo, TunnelState
from tui.widgets.format import limit, mb, short_ago, short_duration, status_text


class Pane(Vertical):
    """A bordered pane with a numbered title, e.g. "1 Instances"."""

    def __init__(self, number: int, title: str, *, id: str) -> None:
        super().__init__(id=id, classes="pane")
        self.border_title = f"{number} {title}"


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
        self.add_column("Name", key="name")
        self.add_column("Status", key="status")
        self.add_column("Flavor", key="flavor")
        self.add_column("IP", key="ip")
        self.add_column("Uptime", key="uptime")
        self.add_column("Jupyter", key="jupyter")

    def set_remote(self, instance_id: str, cell: Text) -> None:
        """The Jupyter column of one instance (its server's state, and SSH trouble when there is some)."""
        self.remote[instance_id] = cell
        if instance_id in self.instances:
            self.update_cell(instance_id, "jupyter", cell, update_width=True)

    @property
    def selected(self) -> Instance | None:
        if not self.instances or self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except RowDoesNotExist:
            return None
        return self.instances.get(key or "")

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


class InstancesPane(Pane):
    def __init__(self) -> None:
        super().__init__(1, "Instances", id="instances-pane")
        self.table = InstancesTable()
        self.hint = Static("Connecting to the cloud…", id="instances-empty", classes="empty")

    def compose(self) -> ComposeResult:
        yield self.table
        yield self.hint

    def show(self, instances: list[Instance], now: datetime) -> None:
        self.table.show(instances, now)
        self.hint.update("No instances yet — press n to launch one.")
        self.hint.display = not instances

    def waiting(self, text: str) -> None:
        """Say why there is no data (still connecting, or the cloud failed) while the table is empty."""
        if not self.table.instances:
            self.hint.update(text)
            self.hint.display = True


class FlavorsTable(DataTable[Text | str]):
    """Flavors with their m1/c1 family and whether they fit the remaining quota."""

    def __init__(self) -> None:
        super().__init__(id="flavors-table", cursor_type="row")
        self.flavors: dict[str, Flavor] = {}
        self._shown: tuple[tuple[Flavor, ...], Quota | None] | None = None

    def on_mount(self) -> None:
        self.add_column("Name", key="name")
        self.add_column("vCPUs", key="vcpus")
        self.add_column("RAM", key="ram")
        self.add_column("Disk", key="disk")
        self.add_column("Fits", key="fits")
        self.add_column("For", key="hint")

    @property
    def selected(self) -> Flavor | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except RowDoesNotExist:
            return None
        return self.flavors.get(key or "")

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


class FlavorsPane(Pane):
    def __init__(self) -> None:
        super().__init__(2, "Flavors", id="flavors-pane")

    def compose(self) -> ComposeResult:
        yield FlavorsTable()


class QuotaBar(Static):
    """RAM, cores, instances and volume GB used of the limit, and what the highlighted flavor would leave."""

    def __init__(self) -> None:
        super().__init__("Quota: waiting for the cloud…", id="quota")

    def show(self, quota: Quota, flavor: Flavor | None) -> None:
        text = Text.assemble(("Quota ", "bold"))
        items = [
            ("RAM", f"{mb(quota.ram_mb_used)}/{_lim_mb(quota.ram_mb_limit)}",
             _ratio(quota.ram_mb_used, quota.ram_mb_limit)),
            ("cores", f"{quota.cores_used}/{limit(quota.cores_limit)}", _ratio(quota.cores_used, quota.cores_limit)),
            ("instances", f"{quota.instances_used}/{limit(quota.instances_limit)}",
             _ratio(quota.instances_used, quota.instances_limit)),
            ("volumes", f"{quota.gigabytes_used}/{limit(quota.gigabytes_limit)} GB",
             _ratio(quota.gigabytes_used, quota.gigabytes_limit)),
        ]
        for i, (label, value, ratio) in enumerate(items):
            if i:
                text.append(" · ", style="dim")
            text.append(f"{label} ")
            text.append(value, style="bold red" if ratio >= 1 else "bold yellow" if ratio >= 0.8 else "bold")
        if flavor is not None:
            text.append("  │  ", style="dim")
            reasons = quota.misfit(flavor)
            if reasons:
                text.append(f"{flavor.name} does not fit: {'; '.join(reasons)}", style="red")
            else:
                text.append(f"{flavor.name} would leave ")
                text.append(f"{mb(quota.ram_mb_free - flavor.ram_mb) if quota.ram_mb_limit >= 0 else '∞'} RAM, "
                            f"{quota.cores_free - flavor.vcpus if quota.cores_limit >= 0 else '∞'} cores",
                            style="bold")
        self.update(text)


def _lim_mb(value: int) -> str:
    return "∞" if value < 0 else mb(value)


def _ratio(used: int, limit: int) -> float:
    return used / limit if limit > 0 else 0.0


SETUP_IDLE = "Nothing running yet — select an instance and press s to run setup."
STEP_MARK = {StepStatus.DONE: ("✓", "green"), StepStatus.SKIPPED: ("↷", "dim"), StepStatus.FAILED: ("✗", "red")}


class SetupPane(Pane):
    """The setup pipeline of one instance: a header (step, elapsed), a progress bar over all steps, and every
    output line prefixed with its time since the start and its step. Fed by the app from setup events."""

    def __init__(self) -> None:
        super().__init__(3, "Setup log", id="setup-pane")
        self.t0 = 0.0
        self.instance = ""
        self.step = ""

    def compose(self) -> ComposeResult:
        yield Static(SETUP_IDLE, id="setup-empty", classes="empty top")
        yield Static("", id="setup-status")
        yield ProgressBar(id="setup-progress", show_eta=False, show_percentage=True)
        yield Log(id="setup-log", max_lines=5000, auto_scroll=True)

    def on_mount(self) -> None:
        self.status = self.query_one("#setup-status", Static)
        self.progress = self.query_one("#setup-progress", ProgressBar)
        self.log_view = self.query_one("#setup-log", Log)
        self.status.display = self.progress.display = False

    def _write(self, lines: list[str]) -> None:
        """Append and keep following the end (a pane that just changed size would otherwise stay put)."""
        self.log_view.write_lines(lines)
        self.log_view.call_after_refresh(self.log_view.scroll_end, animate=False)

    def _write_line(self, line: str) -> None:
        self._write([line])

    def begin(self, instance: str, t: float) -> None:
        """A new run on `instance`: the previous run's lines are cleared."""
        self.instance, self.t0, self.step = instance, t, ""
        self.query_one("#setup-empty").display = False
        self.status.display = self.progress.display = True
        self.log_view.clear()
        self.progress.update(total=None, progress=0)
        self.status.update(Text.assemble((instance, "bold"), ": connecting…"))
        self._write_line(f"Setup on {instance}")

    def _stamp(self, t: float) -> str:
        return f"{max(0.0, t - self.t0):6.1f}s"

    def step_started(self, step: str, index: int, total: int, description: str, t: float) -> None:
        self.step = step
        self.progress.update(total=total, progress=index)
        self.status.update(Text.assemble((self.instance, "bold"), f"  step {index + 1}/{total} ",
                                         (step, "bold cyan"), f" — {description}"))
        self._write_line(f"{self._stamp(t)} ▶ [{index + 1}/{total}] {step}: {description}")

    def output(self, step: str, lines: list[str], t: float) -> None:
        stamp = self._stamp(t)
        self._write([f"{stamp} {step:<9}│ {line}" for line in lines])

    def reconnecting(self, step: str, attempt: int, error: str, t: float) -> None:
        self._write_line(f"{self._stamp(t)} ⟳ {step}: connection lost ({error}); reconnecting "
                                 f"(attempt {attempt})")

    def step_finished(self, result: StepResult, t: float) -> None:
        mark = STEP_MARK.get(result.status, ("·", ""))[0]
        self.progress.advance(1)
        what = {StepStatus.SKIPPED: "already done"}.get(result.status, result.status.value)
        self._write_line(f"{self._stamp(t)} {mark} {result.step}: {what} ({result.seconds:.1f} s)")

    def finished(self, summary: str, ok: bool, results: tuple[StepResult, ...], t: float) -> None:
        failed = next((r for r in results if r.status is StepStatus.FAILED), None)
        lines = [f"{self._stamp(t)} {'■' if ok else '✗'} {summary}"]
        if failed is not None:
            lines.append(f"        failed step: {failed.step}")
            if failed.command:
                lines.append(f"        command: {failed.command}")
            if failed.output_tail:
                lines.append("        last output:")
                lines += [f"          {line}" for line in failed.output_tail]
            lines.append("        Fix the cause, then press s to retry (finished steps are skipped).")
        self._write(lines)
        if ok and self.progress.total is not None:
            self.progress.update(progress=self.progress.total)
        head = Text.assemble((self.instance, "bold"), "  ")
        head.append("✓ setup finished" if ok else f"✗ failed at {failed.step if failed else self.step}",
                    style="green" if ok else "bold red")
        self.status.update(head)


class TunnelsTable(DataTable[Text | str]):
    """One row per instance's tunnel: name, local → remote, state, since (humanized), bytes in/out."""

    BINDINGS = [
        Binding("delete,ctrl+w", "app.close_tunnel", "Close tunnel", id="tunnel.close",
                tooltip="Close the selected tunnel (Jupyter keeps running; t opens it again)"),
    ]

    def __init__(self) -> None:
        super().__init__(id="tunnels-table", cursor_type="row")

    def on_mount(self) -> None:
        for label, key in (("Instance", "instance"), ("127.0.0.1 → VM", "ports"), ("State", "state"),
                           ("Since", "since"), ("In / out", "traffic")):
            self.add_column(label, key=key)

    @property
    def selected(self) -> str | None:
        """The instance id of the highlighted tunnel."""
        if self.row_count == 0:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except RowDoesNotExist:
            return None

    def show(self, tunnels: list[TunnelInfo], names: dict[str, str], now: datetime) -> None:
        current = self.selected
        self.clear()
        for t in sorted(tunnels, key=lambda t: (names.get(t.instance, t.instance), t.instance)):
            style = {TunnelState.UP: "green", TunnelState.DOWN: "red"}.get(t.state, "yellow")
            self.add_row(Text(names.get(t.instance, t.instance[:8]), style="bold"),
                         f":{t.local_port} → :{t.remote_port}",
                         Text(t.state.value, style=style),
                         short_ago(t.since, now),
                         f"↓{humanize.naturalsize(t.bytes_in, gnu=True)} "
                         f"↑{humanize.naturalsize(t.bytes_out, gnu=True)}",
                         key=t.instance)
        if current is not None and current in {t.instance for t in tunnels}:
            self.move_cursor(row=self.get_row_index(current), animate=False)


class TunnelsPane(Pane):
    def __init__(self) -> None:
        super().__init__(4, "Tunnels", id="tunnels-pane")

        self.table = TunnelsTable()
        self.hint = Static("No tunnels yet — j starts Jupyter with one, t opens one.",
                           id="tunnels-empty", classes="empty")

    def compose(self) -> ComposeResult:
        yield self.table
        yield self.hint

    def show(self, tunnels: list[TunnelInfo], names: dict[str, str], now: datetime) -> None:
        self.table.show(tunnels, names, now)
        self.hint.display = not tunnels
