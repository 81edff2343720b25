"""The main screen's panes: Instances, Flavors, Setup log, Tunnels, and the quota summary.

Panes only render models they are given (`show(...)`); they never talk to the cloud. The first frame shows the
panes' frames, titles and hints; their tables and logs (`build()`) are mounted right after it, before the cloud
is asked for anything — so the app appears at once and fills in while it connects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

from tui.ui.widgets.format import leave_ram, limit, mb

if TYPE_CHECKING:
    from datetime import datetime

    from textual.widgets import DataTable, Log, ProgressBar

    from tui.core.live import Fleet
    from tui.core.models import Flavor, Quota, StepResult, TunnelInfo
    from tui.ui.widgets.tables import FlavorsTable, InstancesTable, TunnelsTable


class Pane(Vertical):
    """A bordered pane with a numbered title, e.g. "1 Instances"; `build()` mounts its content."""

    def __init__(self, number: int, title: str, *, id: str) -> None:
        super().__init__(id=id, classes="pane")
        self.border_title = f"{number} {title}"

    def content(self) -> list[Widget]:
        return []

    async def build(self) -> None:
        """Mount the pane's content (first, above any hint already shown)."""
        widgets = self.content()
        if widgets:
            await self.mount_all(widgets, before=0 if self.children else None)
            self.on_resize()  # the pane was laid out before its table came: fit the table to it now

    def on_resize(self) -> None:
        """Collapsed (narrow, another pane focused), a table shows its selected row: below its header in two
        lines (Instances), instead of its header in one."""
        table: DataTable[Text | str] | None = getattr(self, "table", None)  # none before build(): nothing imported
        if table is None or self.size.height == 0:  # not laid out yet
            return
        collapsed = self.screen.has_class("-narrow") and self.size.height <= 2
        table.show_header = not (collapsed and self.size.height == 1)
        if collapsed and table.row_count:  # bring the selected row into view
            table.call_after_refresh(table.move_cursor, row=table.cursor_row, scroll=True)


class InstancesPane(Pane):
    def __init__(self) -> None:
        super().__init__(1, "Instances", id="instances-pane")
        self._hint = "Connecting to the cloud…"
        self.hint = Static(self._hint, id="instances-empty", classes="empty")

    def compose(self) -> ComposeResult:
        yield self.hint

    def content(self) -> list[Widget]:
        from tui.ui.widgets.tables import InstancesTable

        self.table: InstancesTable = InstancesTable()
        return [self.table]

    def show(self, fleet: Fleet, now: datetime) -> None:
        self.table.show(fleet, now)
        if fleet.polled:  # before the cloud's first answer the hint says why there is none (connecting, failed)
            self._say("No instances yet — press n to launch one.")
        self.hint.display = not self.table.instances

    def waiting(self, text: str) -> None:
        """Say why there is no data (still connecting, or the cloud failed) while the table is empty."""
        table = getattr(self, "table", None)
        if table is None or not table.instances:
            self._say(text)
            self.hint.display = True

    def _say(self, text: str) -> None:
        """The hint's text, updated only when it changes: an update re-lays the screen out (shown or not), and
        `show` runs on every poll."""
        if text != self._hint:
            self._hint = text
            self.hint.update(text)


class FlavorsPane(Pane):
    def __init__(self) -> None:
        super().__init__(2, "Flavors", id="flavors-pane")

    def content(self) -> list[Widget]:
        from tui.ui.widgets.tables import FlavorsTable

        self.table: FlavorsTable = FlavorsTable()
        return [self.table]


class OneLine(Static):
    """A line of text that never wraps: cut to fit, it ends with an ellipsis."""

    DEFAULT_CSS = "OneLine { text-wrap: nowrap; text-overflow: ellipsis; }"


class QuotaBar(OneLine):
    """RAM, cores, instances and volume GB used of the limit, and what the highlighted flavor would leave — on one
    line at any width: the labels shorten step by step, and the flavor's hint comes only where there is room (cut
    with an ellipsis when only part of it fits)."""

    def __init__(self) -> None:
        super().__init__("Quota: waiting for the cloud…", id="quota")
        self._shown: tuple[Quota, Flavor | None, str] | None = None
        self._line: tuple[str, list[Any]] | None = None  # the line drawn

    def show(self, quota: Quota, flavor: Flavor | None, burn: str = "") -> None:
        """Redrawn only when the line changes (the app calls this on every poll; an update re-lays the screen out).
        `burn`: the burn rate by the profile's cost model ("3 SU/h"), "" without one."""
        self._shown = (quota, flavor, burn)
        line = quota_line(quota, flavor, self.size.width or 1000, burn)
        if (line.plain, line.spans) != self._line:
            self._line = (line.plain, line.spans)
            self.update(line)

    def on_resize(self) -> None:
        if self._shown is not None:
            self.show(*self._shown)


HINT_ROOM = 55  # cells kept for the flavor's hint: "m1.xlarge does not fit: needs 32 GiB RAM, 4 GiB left"


def quota_line(quota: Quota, flavor: Flavor | None, width: int, burn: str = "") -> Text:
    """The quota and the flavor's hint in `width` cells. The quota's wording depends on the width alone (it does
    not change as the cursor moves over the flavors): the fullest that leaves room for a hint, else the shortest.
    The hint is the fullest that fits beside it, else cut with an ellipsis, or left out when no part would say
    anything. The burn rate (`burn`) follows the quota where it fits, before the hint."""
    lines = [quota_items(quota, level) for level in range(3)]
    room_for = HINT_ROOM if flavor is not None else 0
    burning = [_with_burn(x, burn, level) for level, x in enumerate(lines)] if burn else []
    line = next((x for x in burning if x.cell_len + room_for <= width), None) or next(
        (x for x in burning if x.cell_len <= width), None) or next(
        (x for x in lines if x.cell_len + room_for <= width), lines[-1])
    if line.cell_len > width:
        line = line.copy()
        line.truncate(width, overflow="ellipsis")
        return line
    room = width - line.cell_len - 3
    hints = flavor_hints(quota, flavor) if flavor is not None else []
    hint = next((h for h in hints if h.cell_len <= room), None)
    if hint is None and hints and room >= 12:  # a part of the shortest hint still says something
        hint = hints[-1].copy()
        hint.truncate(room, overflow="ellipsis")
    return Text.assemble(line, (" │ ", "dim"), hint) if hint is not None else line


def _with_burn(items: Text, burn: str, level: int) -> Text:
    label = ("Burn ", "burn ", "")[level]
    return Text.assemble(items, (" · " if level < 2 else " ", "dim"), label, (burn, "bold magenta"))


def quota_items(quota: Quota, level: int) -> Text:
    """RAM, cores, instances and volumes used of their limits; `level` 0 says it in full, 1 and 2 shorter (2
    without the "Quota" label: the line under the title says nothing else)."""
    q = quota
    if level == 0:
        ram = f"{mb(q.ram_mb_used)}/{_lim_mb(q.ram_mb_limit)}"
    else:  # one unit for both numbers when they share it: "4/8 GiB"
        used, lim = mb(q.ram_mb_used), _lim_mb(q.ram_mb_limit)
        unit = lim.rpartition(" ")[2]
        ram = f"{used.removesuffix(' ' + unit)}/{lim}" if used.endswith(" " + unit) else f"{used}/{lim}"
    labels = (("RAM", "cores", "instances", "volumes"), ("RAM", "cores", "VMs", "vol"),
              ("RAM", "cores", "VMs", "vol"))[level]
    items = [
        (labels[0], ram, _ratio(q.ram_mb_used, q.ram_mb_limit)),
        (labels[1], f"{q.cores_used}/{limit(q.cores_limit)}", _ratio(q.cores_used, q.cores_limit)),
        (labels[2], f"{q.instances_used}/{limit(q.instances_limit)}", _ratio(q.instances_used, q.instances_limit)),
        (labels[3], f"{q.gigabytes_used}/{limit(q.gigabytes_limit)} GB", _ratio(q.gigabytes_used, q.gigabytes_limit)),
    ]
    text = Text.assemble(("Quota ", "bold")) if level < 2 else Text()
    for i, (label, value, ratio) in enumerate(items):
        if i:
            text.append(" · " if level < 2 else " ", style="dim")
        text.append(f"{label} ")
        text.append(value, style="bold red" if ratio >= 1 else "bold yellow" if ratio >= 0.8 else "bold")
    return text


def flavor_hints(quota: Quota, flavor: Flavor) -> list[Text]:
    """What the highlighted flavor would leave, or why it does not fit: in full, then shorter."""
    reasons = quota.misfit(flavor)
    if reasons:
        short = "+".join(word for word, over in (("RAM", flavor.ram_mb > quota.ram_mb_free),
                                                 ("cores", flavor.vcpus > quota.cores_free),
                                                 ("instances", quota.instances_free < 1)) if over)
        return [Text(f"{flavor.name} does not fit: {'; '.join(reasons)}", style="red"),
                Text(f"{flavor.name} ✗ {short or 'quota'}", style="red")]
    ram = "∞" if quota.ram_mb_limit < 0 else leave_ram(quota.ram_mb_free - flavor.ram_mb)
    cores = "∞" if quota.cores_limit < 0 else str(quota.cores_free - flavor.vcpus)
    short = f"{ram} RAM" if ram == "no" else ram  # "leaves 2 GiB, 13 cores"; "leaves no RAM, 11 cores"
    return [Text.assemble(f"{flavor.name} would leave ", (f"{ram} RAM, {cores} cores", "bold")),
            Text.assemble(f"{flavor.name} leaves ", (f"{short}, {cores} cores", "bold"))]


def _lim_mb(value: int) -> str:
    return "∞" if value < 0 else mb(value)


def _ratio(used: int, limit: int) -> float:
    return used / limit if limit > 0 else 0.0


SETUP_IDLE = "No setup running — select an instance and press s."
# keyed by StepStatus values (a StrEnum: its members look these up), so the first frame needs no models import
STEP_MARK = {"done": ("✓", "green"), "skipped": ("↷", "dim"), "failed": ("✗", "red")}


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

    def content(self) -> list[Widget]:
        from textual.widgets import Log, ProgressBar

        self.status = OneLine("", id="setup-status")
        # total=1 until a run: a bar without a total animates, 15 timer ticks a second even while hidden
        self.progress: ProgressBar = ProgressBar(total=1, id="setup-progress", show_eta=False, show_percentage=True)
        self.log_view: Log = Log(id="setup-log", max_lines=5000, auto_scroll=True)
        self.status.display = self.progress.display = False
        return [self.status, self.progress, self.log_view]

    async def build(self) -> None:
        await self.mount_all(self.content())  # below the idle hint, which stays on top until a run begins

    def _write(self, lines: list[str]) -> None:
        """Append and keep following the end (a pane that just changed size would otherwise stay put)."""
        self.log_view.write_lines(lines)
        self.log_view.call_after_refresh(self.log_view.scroll_end, animate=False)

    def _write_line(self, line: str) -> None:
        self._write([line])

    def begin(self, instance: str, t: float, heading: str = "") -> None:
        """A new run on `instance`: the previous run's lines are cleared."""
        self.instance, self.t0, self.step = instance, t, ""
        self.query_one("#setup-empty").display = False
        self.status.display = self.progress.display = True
        self.log_view.clear()
        self.progress.update(total=None, progress=0)
        self.status.update(Text.assemble((instance, "bold"), ": connecting…"))
        self._write_line(heading or f"Setup on {instance}")

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
        self._write([f"{stamp} {step:<9} │ {line}" for line in lines])  # a long step name never runs into it

    def reconnecting(self, step: str, attempt: int, error: str, t: float) -> None:
        self._write_line(f"{self._stamp(t)} ⟳ {step}: connection lost ({error}); reconnecting "
                                 f"(attempt {attempt})")

    def step_finished(self, result: StepResult, t: float) -> None:
        mark = STEP_MARK.get(result.status, ("·", ""))[0]
        self.progress.advance(1)
        what = "already done" if result.status == "skipped" else result.status.value
        self._write_line(f"{self._stamp(t)} {mark} {result.step}: {what} ({result.seconds:.1f} s)")

    def finished(self, summary: str, ok: bool, results: tuple[StepResult, ...], t: float) -> None:
        failed = next((r for r in results if r.status == "failed"), None)
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


    def cluster_line(self, head: str, instance: str, phase: str, message: str, t: float) -> None:
        """One line of cluster work headed by `head` (a run of its own in this pane, like a setup)."""
        title = f"Dask cluster on {head}"
        if self.instance != title:
            self.begin(title, t, heading=title)
            self.progress.display = False  # steps of unknown number: the lines and the status say how it goes
        mark = {"failed": "✗", "done": "■", "connected": "✓"}.get(phase, "·")
        self._write_line(f"{self._stamp(t)} {mark} {instance or 'cluster':<14} │ {message}")
        style = "bold red" if phase == "failed" else "green" if phase in ("done", "connected") else ""
        self.status.update(Text.assemble((title, "bold"), "  ", (message, style)))

    def job_line(self, title: str, message: str, failed: bool, t: float) -> None:
        """One line of other work (an image being made): a run of its own in this pane, like a setup."""
        if self.instance != title:
            self.begin(title, t, heading=title)
            self.progress.display = False
        self._write_line(f"{self._stamp(t)} {'✗' if failed else '·'} {message}")
        self.status.update(Text.assemble((title, "bold"), "  ", (message, "bold red" if failed else "")))

    def cancelled(self, instance: str, t: float) -> None:
        if instance == self.instance:
            self._write_line(f"{self._stamp(t)} ✗ cancelled; press s to run setup again")
            self.status.update(Text.assemble((self.instance, "bold"), "  ", ("✗ cancelled", "bold red")))


class TunnelsPane(Pane):
    def __init__(self) -> None:
        super().__init__(4, "Tunnels", id="tunnels-pane")
        self.hint = Static("No tunnels — j starts Jupyter with one, t opens one.",
                           id="tunnels-empty", classes="empty")

    def compose(self) -> ComposeResult:
        yield self.hint

    def content(self) -> list[Widget]:
        from tui.ui.widgets.tables import TunnelsTable

        self.table: TunnelsTable = TunnelsTable()
        return [self.table]

    def show(self, tunnels: list[TunnelInfo], names: dict[str, str], now: datetime) -> None:
        self.table.show(tunnels, names, now)
        self.hint.display = not tunnels
