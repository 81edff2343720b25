"""The Transfers view (`m`): a folder on the VM (its Jupyter workspace unless edited) and a local one, upload /
download (sync, unchanged files skipped), and the queue with each transfer's progress; cancel and retry. Its state
is `tui.ui.transfers`."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Label, Static

from tui.ui.transfers import Job, TransferQueue

STATE_STYLE = {"queued": "dim", "running": "bold", "done": "green", "failed": "red", "cancelled": "yellow"}


def _size(n: float) -> str:
    import humanize

    return str(humanize.naturalsize(n, binary=True))


def progress_text(job: Job) -> str:
    """`45% 12.0 MiB/27.0 MiB 8.1 MiB/s ETA 2 s` while running; the summary or the error after."""
    p, s = job.progress, job.summary
    if job.state == "done" and s is not None:
        return f"{s.transferred} transferred ({_size(s.bytes)}), {s.skipped} skipped"
    if job.state in ("failed", "cancelled") and job.error:
        return job.error
    if p is None:
        return ""
    eta = f" ETA {p.eta:.0f} s" if p.eta is not None else ""
    return f"{job.percent()}% {_size(p.done)}/{_size(p.total)} {_size(p.rate)}/s{eta} · {p.path}"


class TransfersScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("u", "upload", "Upload", id="transfers.upload",
                tooltip="Sync the local folder up into the VM's folder (unchanged files skipped)"),
        Binding("d", "download", "Download", id="transfers.download",
                tooltip="Sync the VM's folder down into the local folder (unchanged files skipped)"),
        Binding("x", "cancel_job", "Cancel", id="transfers.cancel",
                tooltip="Cancel the highlighted transfer (partial files stay: r continues them)"),
        Binding("r", "retry", "Retry", id="transfers.retry", tooltip="Run the highlighted failed transfer again"),
        Binding("escape,q", "dismiss", "Close", id="transfers.close",
                tooltip="Close the view (transfers go on in the background)"),
    ]

    def __init__(self, queue: TransferQueue, instance: str, remote: str) -> None:
        super().__init__(classes="dialog-screen")
        self.queue, self.instance, self.workspace = queue, instance, remote
        self.vm = Input(remote, placeholder=remote, id="transfers-remote")
        self.local = Input(str(queue.local_folder(instance)), id="transfers-local")
        self.table: DataTable[Text | str] = DataTable(id="transfers-table", cursor_type="row")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(f"Transfers — {self.instance}", classes="dialog-title")
            yield Static(f"Folder on {self.instance} (from its home; ~ allowed) and here — tab to edit, then u or d:",
                         classes="advice")
            with Horizontal(id="transfers-folders"):
                yield self.vm
                yield self.local
            yield self.table
            yield Footer()

    def on_mount(self) -> None:
        for label in ("#", "Transfer", "State", "Progress"):
            self.table.add_column(label, key=label.lower())
        self.table.focus()
        self.refresh_jobs()
        self.set_interval(0.3, self.refresh_jobs)

    def refresh_jobs(self) -> None:
        table, current = self.table, self.table.cursor_row
        table.clear()
        for job in self.queue.jobs:
            table.add_row(str(job.number), job.label, Text(job.state, style=STATE_STYLE.get(job.state, "")),
                          progress_text(job), key=str(job.number))
        if self.queue.jobs:
            table.move_cursor(row=min(current, len(self.queue.jobs) - 1), animate=False)

    @property
    def highlighted(self) -> Job | None:
        row = self.table.cursor_row
        return self.queue.jobs[row] if self.queue.jobs and 0 <= row < len(self.queue.jobs) else None

    def _folder(self) -> Path:
        return Path(self.local.value.strip() or str(self.queue.local_folder(self.instance))).expanduser()

    @property
    def remote(self) -> str:
        """The VM's folder as typed (the workspace when left empty)."""
        return self.vm.value.strip() or self.workspace

    def action_upload(self) -> None:
        folder = self._folder()
        if not folder.is_dir():
            self.notify(f"{folder} is not a folder here: make it, or type another one.", severity="warning")
            return
        self.queue.upload(self.instance, folder, self.remote)
        self.refresh_jobs()

    def action_download(self) -> None:
        try:
            self.queue.download(self.instance, self._folder(), self.remote)
        except OSError as exc:
            self.notify(f"{self._folder()}: {exc.strerror or exc}", severity="error")
        self.refresh_jobs()

    def action_cancel_job(self) -> None:
        job = self.highlighted
        self.notify(self.queue.cancel(job) if job else "No transfer highlighted.")
        self.refresh_jobs()

    def action_retry(self) -> None:
        job = self.highlighted
        self.notify(self.queue.retry(job) if job else "No transfer highlighted.")
        self.refresh_jobs()
