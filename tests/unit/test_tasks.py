"""`tui.core.tasks.spawn` on a real event loop: a background task that raises is logged and emitted, a cancelled one
is not, and every task is held until it ends."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from tui.core import tasks
from tui.core.events import BackgroundFailed, Event


async def _fails(started: asyncio.Event) -> None:
    started.set()
    await asyncio.sleep(0)
    raise RuntimeError("the remote end went away")


def test_a_failing_task_is_logged_and_emitted(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Event] = []
    errors: list[BaseException] = []

    async def main() -> None:
        started = asyncio.Event()
        task = tasks.spawn(_fails(started), name="following the Jupyter log of vm1", emit=seen.append,
                           instance_id="i-1", on_error=errors.append)
        await asyncio.wait([task])
        await asyncio.sleep(0)  # done callbacks run on the next turn of the loop

    with caplog.at_level(logging.ERROR, logger="tui"):
        asyncio.run(main())
    assert seen == [BackgroundFailed("i-1", "following the Jupyter log of vm1",
                                     "RuntimeError: the remote end went away")]
    assert seen[0].message == "following the Jupyter log of vm1 stopped: RuntimeError: the remote end went away"
    assert [type(e) for e in errors] == [RuntimeError]
    [record] = [r for r in caplog.records if r.name == "tui.core.tasks"]
    assert record.levelno == logging.ERROR and "following the Jupyter log of vm1" in record.getMessage()
    assert record.exc_info is not None  # the traceback is in the app log


def test_a_cancelled_or_finished_task_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Event] = []

    async def main() -> None:
        forever = tasks.spawn(asyncio.sleep(3600), name="waiting", emit=seen.append)
        done = tasks.spawn(asyncio.sleep(0), name="quick", emit=seen.append)
        await asyncio.sleep(0)
        forever.cancel()
        await asyncio.wait([forever, done])
        await asyncio.sleep(0)

    with caplog.at_level(logging.DEBUG, logger="tui"):
        asyncio.run(main())
    assert seen == []
    assert [r for r in caplog.records if r.name == "tui.core.tasks"] == []


def test_a_task_nobody_references_is_held_until_it_ends() -> None:
    """The loop keeps only weak references: without `spawn`'s, a garbage collection can end the task mid-flight."""
    finished: list[str] = []

    async def work(gate: asyncio.Event) -> None:
        await gate.wait()
        finished.append("done")

    async def main() -> None:
        gate = asyncio.Event()
        before = tasks.running()
        tasks.spawn(work(gate), name="work", emit=None)  # the caller drops the task
        gc.collect()
        assert tasks.running() == before + 1
        gate.set()
        for _ in range(10):
            await asyncio.sleep(0)
        assert tasks.running() == before

    asyncio.run(main())
    assert finished == ["done"]


def test_a_failing_reporter_does_not_hide_the_failure(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: Event) -> None:
        raise BrokenPipeError("stderr is gone")

    async def main() -> None:
        task = tasks.spawn(_fails(asyncio.Event()), name="closing a tunnel", emit=broken)
        await asyncio.wait([task])
        await asyncio.sleep(0)

    with caplog.at_level(logging.ERROR, logger="tui"):
        asyncio.run(main())
    messages = [r.getMessage() for r in caplog.records if r.name == "tui.core.tasks"]
    assert any("'closing a tunnel' failed" in m for m in messages)
    assert any("reporting the failure of 'closing a tunnel' failed" in m for m in messages)
