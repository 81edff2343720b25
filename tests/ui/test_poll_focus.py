"""Polls back off while the terminal says it is not focused, and poll at once when it is focused again."""

from __future__ import annotations

from typing import Any

from textual import events

from tests._support import never
from tui.ui.widgets.tables import InstancesTable


async def test_polls_pause_while_the_terminal_is_unfocused(ui: Any, sb: Any, make_app: Any) -> None:
    sb.seed_servers(2, ssh_hosts=False)
    app = make_app()  # polls every 0.5 s
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), message_hook=watch.hook) as pilot:
        await ui.wait_for(pilot, lambda: app.query_one(InstancesTable).row_count == 2 and len(watch.of("Polled")) > 2)
        app.post_message(events.AppBlur())
        await ui.wait_for(pilot, lambda: not app.app_focus and not app.polling.busy)  # blurred; a running poll landed
        polls = len(watch.of("Polled"))
        assert await never(lambda: len(watch.of("Polled")) > polls, within=2.0)  # four refresh intervals
        app.post_message(events.AppFocus())
        await ui.wait_for(pilot, lambda: len(watch.of("Polled")) > polls, timeout=2.0)
