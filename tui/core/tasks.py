"""Background asyncio tasks nobody awaits, started one way so none dies silently.

`spawn` keeps a strong reference to the task until it ends (the event loop keeps only weak ones, so an unreferenced
task can be garbage-collected mid-flight) and, when it ends with an exception other than cancellation, logs it to the
app log with its traceback and emits `BackgroundFailed` (the app shows a warning, the CLI a line on stderr). A task
whose caller awaits it anyway (and so sees its exception) may still be spawned: the report is the same.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from tui.core.events import BackgroundFailed, Emit

log = logging.getLogger("tui.core.tasks")

T = TypeVar("T")

_running: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, T], *, name: str, emit: Emit | None, instance_id: str = "",
          on_error: Callable[[BaseException], None] | None = None) -> asyncio.Task[T]:
    """Run `coro` as a task named `name` (words: "following the Jupyter log of vm1"), held until it ends. A failure
    (not a cancellation) is logged, emitted as `BackgroundFailed(instance_id, name, error)` when `emit` is given,
    and passed to `on_error` (e.g. to reset state the task owned)."""
    task = asyncio.get_running_loop().create_task(coro, name=name)
    _running.add(task)
    task.add_done_callback(lambda t: _ended(t, name, emit, instance_id, on_error))
    return task


def running() -> int:
    """How many spawned tasks have not ended yet (for tests and diagnostics)."""
    return len(_running)


def _ended(task: asyncio.Task[Any], name: str, emit: Emit | None, instance_id: str,
           on_error: Callable[[BaseException], None] | None) -> None:
    _running.discard(task)
    if task.cancelled():
        return
    exc = task.exception()  # retrieved: asyncio no longer logs "exception was never retrieved"
    if exc is None:
        return
    log.error("background task %r failed: %s", name, _describe(exc), exc_info=exc)
    # each reporter is guarded: a failing one must not hide the failure from the others
    if on_error is not None:
        try:
            on_error(exc)
        except Exception:
            log.exception("handling the failure of %r failed", name)
    if emit is not None:
        try:
            emit(BackgroundFailed(instance_id, name, _describe(exc)))
        except Exception:
            log.exception("reporting the failure of %r failed", name)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
