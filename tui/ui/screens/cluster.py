"""`k`: the Dask cluster headed by the selected instance — the scheduler, the dashboard URL and a row per worker,
live from the scheduler (refreshed every few seconds while shown). Its keys create, grow, shrink, open the
dashboard and delete; the work itself is done by the app's clusters owner. Its progress shows below the workers (and
in the Setup log pane)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Log, Static

from tui.ui.widgets.format import short_duration

if TYPE_CHECKING:
    from tui.core.events import ClusterState

BINDINGS = [
    Binding("escape,q", "close", "Close", id="cluster.close", tooltip="Back to the main screen"),
    Binding("n", "app.cluster_create", "Create", id="cluster.create",
            tooltip="Make the selected instance the head of a Dask cluster: asks how many workers (what fits the "
                    "quota), launches them (private, through the head), starts the scheduler and workers (TLS)"),
    Binding("plus", "app.cluster_grow", "Add worker", id="cluster.grow",
            tooltip="Launch one more worker instance and join it to the cluster"),
    Binding("minus", "app.cluster_shrink", "Remove worker", id="cluster.shrink",
            tooltip="Retire the newest worker (its data moves first), then delete its instance (asks)"),
    Binding("d", "app.cluster_dashboard", "Dashboard", id="cluster.dashboard",
            tooltip="Open the Dask dashboard in the browser through a tunnel (URL copied too)"),
    Binding("ctrl+d", "app.cluster_delete", "Delete cluster", id="cluster.delete",
            tooltip="Stop the cluster and delete its worker instances (type the head's name); the head stays"),
]


def _size(n: int) -> str:
    import humanize

    return str(humanize.naturalsize(n, binary=True, format="%.1f"))


class ClusterScreen(Screen[None]):
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = list(BINDINGS)

    def __init__(self, head_id: str, head_name: str) -> None:
        super().__init__(id="cluster-screen")
        self.head_id = head_id
        self.head_name = head_name
        self.state: ClusterState | None = None
        self._log_end = 0.0  # where the progress pane's last line was scrolled to

    def compose(self) -> ComposeResult:
        with Vertical(classes="pane", id="cluster-pane") as pane:
            pane.border_title = f"Dask cluster — {self.head_name}"
            yield Static(Text("Asking the scheduler…", style="dim"), id="cluster-status")
            yield DataTable(id="cluster-workers", cursor_type="row", zebra_stripes=True)
            yield Log(id="cluster-log", max_lines=500, auto_scroll=True)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one("#cluster-workers", DataTable)
        table.add_column("Worker", key="name")
        table.add_column("State", key="state")
        table.add_column("Threads", key="threads")
        table.add_column("Memory used / limit", key="memory")
        table.add_column("Tasks", key="tasks")
        table.add_column("Seen", key="seen")
        table.focus()

    def progress(self, instance: str, message: str) -> None:
        """A line of the cluster's work (also in the Setup log pane). The pane follows new lines unless scrolled up
        from where the last line put it (Log's own auto-scroll decides before the line counts, and stops following
        for good once a line arrives in the same frame as the one before)."""
        log = self.query_one("#cluster-log", Log)
        follow = log.scroll_y >= self._log_end
        log.write_line(f"{instance or 'cluster'}: {message}", scroll_end=False)
        if follow:
            def to_end(tries: int = 3) -> None:
                log.scroll_end(animate=False, immediate=True, x_axis=False)
                self._log_end = log.scroll_y
                if log.scroll_y < log.max_scroll_y and tries > 1:  # the layout was not settled yet: once more
                    self.call_after_refresh(to_end, tries - 1)

            self.call_after_refresh(to_end)

    def action_close(self) -> None:
        self.dismiss(None)

    def show(self, state: ClusterState, now: float | None = None) -> None:
        """The scheduler's latest view (or why there is none)."""
        self.state = state
        now = time.time() if now is None else now
        status = self.query_one("#cluster-status", Static)
        table = self.query_one("#cluster-workers", DataTable)
        table.clear()
        absent = Text.assemble(*((f" · {n} {kind}", "bold red") for kind, n in _counts(state))) if state.absent \
            else Text()
        if state.status is None:
            if state.problem == "deleted" or "runs no Dask cluster" in state.problem:
                status.update(Text.assemble(("○ no cluster", "yellow"), f" on {self.head_name} — n creates one "
                                            "(asks how many workers), then + and - scale it", absent))
            else:
                status.update(Text.assemble(("✗ the scheduler does not answer", "bold red"), f": {state.problem}",
                                            absent))
        else:
            s = state.status
            dashboard = state.dashboard_url or "d opens it through a tunnel"
            status.update(Text.assemble(("● ", "green"), (f"{len(s.workers)} workers", "bold"),
                                        f", {s.threads} threads · scheduler {s.scheduler} · dashboard {dashboard}",
                                        absent))
            for w in s.workers:
                limit = _size(w.memory_limit) if w.memory_limit else "no limit"
                table.add_row(w.name, w.status, str(w.threads), f"{_size(w.memory_used)} / {limit}",
                              str(w.processing), short_duration(max(0.0, now - w.last_seen)) + " ago", key=w.name)
        for a in state.absent:  # they bill all the same: shown, with why
            table.add_row(a.name, Text(a.state, style="bold red" if a.state != "starting" else "yellow"), "–",
                          a.why, "–", "–", key=a.name)


def _counts(state: ClusterState) -> list[tuple[str, int]]:
    kinds: dict[str, int] = {}
    for a in state.absent:
        kinds[a.state] = kinds.get(a.state, 0) + 1
    return sorted(kinds.items())
