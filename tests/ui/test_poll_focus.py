"""Polls back off while the terminal says it is not focused, and poll at once when it is focused again."""

from __future__ import annotations

import asyncio
from typing import Any

from textual import events

from tui.ui.widgets.tables import InstancesTable


async def test_polls_pause_while_the_terminal_is_unfocused(ui: Any, sb: Any, make_app: Any) -> None:
    sb.seed_servers(2, ssh_hosts=False)
    app = make_app()  # polls every 0.5 s
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), message_hook=watch.hook) as pilot:
        await ui.wait_for(pilot, lambda: app.query_one(InstancesTable).row_count == 2 and len(watch.of("Polled")) > 2)
        app.post_message(events.AppBlur())
        await pilot.pause(0.6)  # a poll already running may still land
        polls = len(watch.of("Polled"))
        await asyncio.sleep(2.0)  # four refresh intervals
        assert len(watch.of("Polled")) == polls
        app.post_message(events.AppFocus())
        await ui.wait_for(pilot, lambda: len(watch.of("Polled")) > polls, timeout=2.0)
