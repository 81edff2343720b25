"""The app signs in to a cloud whose clouds.yaml holds no TOTP passcode: a dialog asks for it while connecting (the
core's connecting thread waits for the answer), then the listing comes; cancelled, the banner says what is needed."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input, Static

from tui.core.cloud.signin import ask_through
from tui.core.engine import CoreEngine, open_cloud
from tui.sandbox.credentials import totp
from tui.ui.app import CadesApp
from tui.ui.screens.signin import SecretPrompt
from tui.ui.widgets.tables import InstancesTable


def totp_app(ui: Any, sb: Any) -> CadesApp:
    settings = ui.settings_for(sb, cloud="sandbox-totp")

    def build_engine(emit: Any) -> CoreEngine:  # as `run_app`'s
        return CoreEngine(settings, open_cloud(settings, ask_through(emit)), emit)

    return CadesApp(settings, build_engine)


async def test_the_passcode_is_asked_in_a_dialog_then_the_instances_are_listed(ui: Any, sb: Any) -> None:
    sb.seed_servers(1, ssh_hosts=False)
    app = totp_app(ui, sb)
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = await ui.screen(pilot, SecretPrompt)
        assert "TOTP passcode for cloud 'sandbox-totp'" in str(dialog.query_one(".dialog-body", Static).render())
        field = dialog.query_one("#secret", Input)
        assert field.password and field.has_focus  # masked, ready to type in
        await pilot.press(*totp(sb.secrets["totp_secret"]), "enter")
        await ui.wait_for(pilot, lambda: app.query_one(InstancesTable).row_count == 1)
        assert not isinstance(app.screen, SecretPrompt) and app.polling.state == "connected"


async def test_a_cancelled_passcode_is_said_in_the_banner(ui: Any, sb: Any) -> None:
    app = totp_app(ui, sb)
    async with app.run_test(size=(80, 24)) as pilot:
        await ui.screen(pilot, SecretPrompt)
        await pilot.press("escape")
        banner = app.query_one("#banner", Static)
        await ui.wait_for(pilot, lambda: banner.display)
        text = str(banner.render())
        assert "needs a TOTP passcode" in text and "none was given" in text, text
        assert app.polling.state == "failed"


async def test_quitting_with_the_dialog_open_frees_the_connecting_thread(ui: Any, sb: Any) -> None:
    """The connecting thread waits on the dialog: the app's end answers it (else the interpreter's exit would wait
    for that thread up to ASK_TIMEOUT_S)."""
    import threading

    settings = ui.settings_for(sb, cloud="sandbox-totp")
    done = threading.Event()

    def build_engine(emit: Any) -> CoreEngine:
        try:
            return CoreEngine(settings, open_cloud(settings, ask_through(emit)), emit)
        finally:
            done.set()

    app = CadesApp(settings, build_engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await ui.screen(pilot, SecretPrompt)
        assert not done.is_set()
        app.exit()
    assert done.wait(10)
