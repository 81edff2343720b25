"""What the core says without being asked (issue 21, part 4): a background task that died and a host key that is
not pinned because the console log could not be read arrive as warning toasts, through the same bridge as every
core event."""

from __future__ import annotations

from typing import Any

from tui.core.events import BackgroundFailed, HostKeysUnpinned
from tui.ui.widgets.tables import FlavorsTable


async def test_background_failures_and_unpinned_host_keys_are_warned_about(ui: Any, make_app: Any) -> None:
    app = make_app()
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), notifications=True, message_hook=watch.hook) as pilot:
        await ui.wait_for(pilot, lambda: app.query_one(FlavorsTable).row_count > 0)
        app.bridge(BackgroundFailed("", "following the Jupyter log of vm1", "ManagerError: the key was refused"))
        app.bridge(HostKeysUnpinned("i-1", "vm1", "Guest does not have a console available."))
        await ui.wait_for(pilot, lambda: len(watch.notes("warning")) >= 2)
    notes = watch.notes("warning")
    assert any(n.startswith("Background work failed") and
               "following the Jupyter log of vm1 stopped: ManagerError: the key was refused" in n for n in notes), notes
    assert any(n.startswith("Host key · vm1") and "Could not read the console log of vm1 (Guest does not have a "
               "console available.)" in n and "compare the host key fingerprint" in n for n in notes), notes
