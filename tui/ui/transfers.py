"""The Transfers view's state: a queue of transfers (one runs at a time), each with its progress, cancel and retry.

A plain object, given narrow callables by the app (the engine, how to start an async worker, how to say something):
readable and testable without Textual. Progress arrives from the engine's data thread and is only stored here; the
screen reads it on a timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from tui.core.api import Engine
    from tui.core.transfer.models import TransferProgress, TransferRequest, TransferSummary

Severity = Literal["information", "warning", "error"]
LOCAL_ROOT = "~/cades-workspace"  # the default local folder: one sub-folder per instance
RETRY_AFTER_S = (2.0, 5.0, 10.0, 20.0)  # a transfer cut by the VM's side (connection lost) goes on after these


class Cancellable(Protocol):
    def cancel(self) -> None: ...


@dataclass
class Job:
    number: int
    label: str
    request: TransferRequest
    state: str = "queued"  # queued | running | retrying | done | failed | cancelled
    progress: TransferProgress | None = None
    summary: TransferSummary | None = None
    error: str = ""
    notes: list[str] = field(default_factory=list)

    def percent(self) -> int | None:
        p = self.progress
        if self.state == "done":
            return 100
        if p is None or not p.total:
            return None
        return min(100, 100 * p.done // p.total)


class TransferQueue:
    """Jobs in the order asked; the first queued one starts when none runs."""

    def __init__(self, engine: Callable[[], Engine | None],
                 start: Callable[[Coroutine[Any, Any, None], str], Cancellable],
                 say: Callable[[str, Severity], None]) -> None:
        self._engine, self._start, self._say = engine, start, say
        self.jobs: list[Job] = []
        self._running: tuple[Job, Cancellable] | None = None

    # -- what the screen asks ----------------------------------------------------------------------------------
    @staticmethod
    def local_folder(instance: str) -> Path:
        return Path(LOCAL_ROOT).expanduser() / instance

    def upload(self, instance: str, local: Path, remote: str) -> Job:
        """Sync the local folder up into the VM's folder (unchanged files skipped, nothing deleted)."""
        return self.add(f"↑ {local.name}/ → {remote}", self._request(str(local), f"{instance}:{remote}"))

    def download(self, instance: str, local: Path, remote: str) -> Job:
        """Sync the VM's folder down into the local one (unchanged files skipped, nothing deleted)."""
        local.mkdir(parents=True, exist_ok=True)
        return self.add(f"↓ {remote} → {local.name}/", self._request(f"{instance}:{remote}", str(local)))

    @staticmethod
    def _request(src: str, dst: str) -> TransferRequest:
        from tui.core.transfer.models import TransferRequest, parse_endpoint

        return TransferRequest("sync", parse_endpoint(src), parse_endpoint(dst))

    def add(self, label: str, request: TransferRequest) -> Job:
        job = Job(len(self.jobs) + 1, label, request)
        self.jobs.append(job)
        self._next()
        return job

    def cancel(self, job: Job) -> str:
        """A queued job is dropped; the running one stops (its partial files stay for a retry)."""
        if job.state == "queued":
            job.state = "cancelled"
            return f"Transfer {job.number} cancelled before it started."
        if self._running is not None and self._running[0] is job:
            self._running[1].cancel()
            return f"Transfer {job.number} cancelled; a retry (r) continues its partial files."
        return f"Transfer {job.number} is {job.state}: nothing to cancel."

    def retry(self, job: Job) -> str:
        if job.state not in ("failed", "cancelled"):
            return f"Transfer {job.number} is {job.state}: only a failed or cancelled one is retried."
        job.state, job.error, job.progress, job.summary = "queued", "", None, None
        self._next()
        return f"Transfer {job.number} queued again (partial files are continued)."

    # -- running -------------------------------------------------------------------------------------------------
    def _next(self) -> None:
        if self._running is not None:
            return
        job = next((j for j in self.jobs if j.state == "queued"), None)
        engine = self._engine()
        if job is None or engine is None:
            return
        job.state = "running"
        self._running = (job, self._start(self._run(engine, job), f"transfer {job.number}"))

    async def _run(self, engine: Engine, job: Job) -> None:
        from tui.core.api import ManagerError
        from tui.core.cloud.base import CloudError

        def progress(p: TransferProgress) -> None:  # from the data thread: stored, read by the screen's timer
            job.progress = p

        try:
            job.summary = await self._attempts(engine, job, progress)
            job.state = "failed" if job.summary.failed else "done"
            job.error = "; ".join(job.summary.failed)
            self._say(f"Transfer {job.number} done: {job.summary.transferred} transferred, "
                      f"{job.summary.skipped} skipped.", "information")
        except asyncio.CancelledError:
            job.state = "cancelled"
            raise
        except (CloudError, ManagerError) as exc:
            job.state, job.error = "failed", str(exc)
            self._say(f"Transfer {job.number} failed: {exc}", "error")
        finally:
            self._running = None
            self._next()

    async def _attempts(self, engine: Engine, job: Job, progress: Callable[[TransferProgress], None]) \
            -> TransferSummary:
        """The transfer, again after a pause when the connection was lost (a reconnect resumes partial files);
        other failures (a missing path, no python3 on the VM) and the last one are raised."""
        from tui.core.api import ManagerError
        from tui.core.transfer.models import TransferCut, TransferError

        for pause in (*RETRY_AFTER_S, None):
            try:
                return await engine.transfers.run(job.request, progress, job.notes.append)
            except ManagerError as exc:  # the manager's own are connection failures; a transfer's say which
                if pause is None or (isinstance(exc, TransferError) and not isinstance(exc, TransferCut)):
                    raise
                job.state, job.error = "retrying", f"{exc} — trying again in {pause:.0f} s"
                await asyncio.sleep(pause)
                job.state, job.error = "running", ""
        raise AssertionError("unreachable")  # pragma: no cover
