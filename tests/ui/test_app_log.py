"""The app log file (issue 11): a session leaves a trail there — every action started (key or palette), every
notification, every failure — with secrets masked; libraries stay quiet below warnings."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tui.startup import setup_logging
from tui.ui.widgets.tables import FlavorsTable


@pytest.fixture
def app_log() -> Iterator[Any]:
    path = setup_logging()
    assert path is not None
    try:
        yield path
    finally:
        for handler in [h for h in logging.getLogger().handlers if getattr(h, "_cades", False)]:
            logging.getLogger().removeHandler(handler)
            handler.close()


async def test_a_session_logs_its_actions_and_failures_with_secrets_masked(ui: Any, sb: Any, make_app: Any,
                                                                            app_log: Any) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.wait_for(pilot, lambda: app.query_one(FlavorsTable).row_count > 0)
        await pilot.press("question_mark")  # help, by key
        await pilot.pause()
        await pilot.press("escape")
        await pilot.press("s")  # setup with no instance selected: said so
        await app.run_action("refresh")  # as the palette runs an action
        app.notify("Open http://127.0.0.1:8890/lab?token=0123456789abcdef in your browser")
        logging.getLogger("keystoneauth").info("a library's chatter: request body password=hunter2")
        await pilot.pause()
    text = app_log.read_text()
    assert "action help" in text and "action refresh" in text, text
    assert "action setup" in text, text
    assert "token=********" in text and "0123456789abcdef" not in text, text
    assert "hunter2" not in text and "chatter" not in text, text
