"""Nothing touches the app's event loop from another thread except through `call_soon_threadsafe`.

A thread that schedules work with `loop.call_soon` (or sets an asyncio Event, resumes a Textual timer, puts into
an asyncio queue...) does not wake the loop: the work waits for whatever wakes it next — a key, the next poll
(~1 s). asyncio's debug mode checks every such call; this test records each one while the app connects, polls,
and its thread workers post their results."""

from __future__ import annotations

import asyncio
import threading
import traceback
from typing import Any

from tui.ui.widgets.tables import InstancesTable


def record_foreign_calls(loop: asyncio.AbstractEventLoop) -> list[str]:
    """Turn on the loop's debug mode and record (with its stack) each call asyncio finds made off its thread. The
    call then goes on as without debug mode (asyncio would raise in that thread: a wake-up lost for good — an Event
    whose waiter never runs — that hangs the app's shutdown instead of saying where it came from)."""
    loop.set_debug(True)
    check = loop._check_thread  # type: ignore[attr-defined]  # CPython's BaseEventLoop, debug mode only
    foreign: list[str] = []

    def checked() -> None:
        try:
            check()
        except RuntimeError:
            foreign.append(f"{threading.current_thread().name}:\n{''.join(traceback.format_stack(limit=12))}")

    loop._check_thread = checked  # type: ignore[attr-defined]
    return foreign


async def test_no_loop_call_from_another_thread(ui: Any, sb: Any, make_app: Any) -> None:
    sb.seed_servers(3, ssh_hosts=False)
    loop = asyncio.get_running_loop()
    foreign = record_foreign_calls(loop)

    # The detector works: a plain call_soon from a thread is caught.
    await asyncio.to_thread(loop.call_soon, lambda: None)
    assert len(foreign) == 1
    foreign.clear()

    app = make_app()  # polls every 0.5 s: the connect worker, then poll workers emitting through the bridge
    watch = ui.Watch()
    try:
        async with asyncio.timeout(60):
            async with app.run_test(size=(120, 40), message_hook=watch.hook) as pilot:
                table = app.query_one(InstancesTable)
                await ui.wait_for(pilot, lambda: table.row_count == 3 and len(watch.of("Polled")) > 2)
                await pilot.press("c")  # the console log, read in a thread worker that posts it
                await ui.wait_for(pilot, lambda: watch.of("ConsoleLoaded"))
                await pilot.press("escape")
                await pilot.press("enter")  # details, read in a thread worker
                await ui.wait_for(pilot, lambda: watch.of("InstanceDetails"))
                await pilot.press("escape")
                polls = len(watch.of("Polled"))
                await pilot.press("f5")  # a full listing
                await ui.wait_for(pilot, lambda: len(watch.of("Polled")) > polls + 1)
                await pilot.press("down", "slash", "b", "enter")
    finally:  # said even when the app failed or hung on such a call
        loop.set_debug(False)
        assert not foreign, "called on the app's loop from another thread:\n" + "\n".join(foreign)
    assert not watch.notes("error")
