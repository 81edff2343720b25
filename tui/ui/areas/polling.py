"""Connecting and polling the cloud: one poll at a time (re-armed when it ends, in `finally`), backing off while
the cloud fails and while the terminal is not focused, a watchdog that says when it hangs; each poll's result
arrives as the core's `Polled` event — the first one possibly before the engine exists (read with the cached
token while openstacksdk loads: `tui.core.cloud.quick`)."""

from __future__ import annotations

import gc
import threading
from typing import TYPE_CHECKING

from tui.ui.areas.base import Owner, base, msg, work

if TYPE_CHECKING:
    from textual.timer import Timer
    from textual.widgets import DataTable

    from tui.core.api import Engine
    from tui.core.events import Event
    from tui.ui import core_messages as cm
    from tui.ui.app import CadesApp

MAX_BACKOFF_S = 60.0
FIRST_DRAW_WAIT_S = 1.0  # the longest the core's build waits for the first listing to be drawn
UNFOCUSED_S = 30.0  # at least this long between polls while the terminal says it is not focused
FLAVORS_EVERY = 6  # re-read flavors on every 6th poll (they rarely change)


def settle_memory() -> None:
    """Exempt what is loaded so far (modules, classes, the widget tree) from Python's full garbage collections:
    with Textual, openstacksdk and asyncssh loaded a full collection is a 50-80 ms pause that lands on key presses
    while a log streams. Frozen objects are still freed by reference counting."""
    gc.freeze()


class Polling(Owner):
    """The cloud's connection state and the poll loop: at most one connect or poll runs; the next is armed when it
    ends (`rearm`), sooner after F5 or focus, later after failures (`delay` doubles up to MAX_BACKOFF_S)."""

    def __init__(self, app: CadesApp) -> None:
        super().__init__(app)
        self.state = "connecting"  # connecting · connected · failed · unconfigured (no cloud at all)
        self.delay = app.settings.ui.refresh_s  # until the next poll: longer while the cloud fails
        self.stuck_after_s = max(20.0, 4 * app.settings.ui.refresh_s)  # say so when a poll hangs this long
        self.timer: Timer | None = None  # the next poll
        self.watchdog: Timer | None = None  # the running poll's "has not answered" warning
        self.busy = False  # a connect or poll runs
        self.again = False  # poll again as soon as the running one ends
        self.full = False  # the next poll lists every server (F5, after an action)
        self.polls = 0
        self.first_drawn = threading.Event()  # set when the first listing is on screen

    def start(self) -> None:
        self.tick()

    def tick(self) -> None:
        self.timer = None
        self.busy = True
        self.watchdog = self.app.set_timer(self.stuck_after_s, self._stuck)
        if self.engine is None:
            self._connect()
        else:
            self.polls += 1
            full, self.full = self.full, False
            self._poll(self.engine, not self.fleet.flavors or self.polls % FLAVORS_EVERY == 0, full)

    def _stuck(self) -> None:
        """A connect or poll has not returned: say so (the screen stays live; the worker keeps waiting)."""
        self.watchdog = None
        self.set_state("failed")
        self._show_banner(f"⚠ The cloud has not answered for {self.stuck_after_s:.0f} s — still waiting. "
                          "Check your network/VPN and the cloud's status page.")

    def _show_banner(self, text: str) -> None:
        self.app.banner.update(text)
        self.app.banner.display = True
        self.app.instances_pane.waiting(f"No data: {text.lstrip('⚠ ')}")

    def rearm(self) -> None:
        self.busy = False
        if self.watchdog is not None:
            self.watchdog.stop()
            self.watchdog = None
        if self.app.quitting:
            return
        if self.again:
            self.again = False
            self.tick()
        else:
            delay = self.delay if self.app.app_focus else max(self.delay, UNFOCUSED_S)
            self.timer = self.app.set_timer(delay, self.tick)

    def on_app_blur(self) -> None:
        """The terminal lost focus (where it tells): the next polls wait UNFOCUSED_S (see `rearm`)."""
        if self.timer is not None and not self.busy:
            self.timer.stop()
            self.timer = self.app.set_timer(max(self.delay, UNFOCUSED_S), self.tick)

    def on_app_focus(self) -> None:
        """Back in front: poll now rather than at the end of a long unfocused wait."""
        if self.timer is not None and not self.busy:
            self.timer.stop()
            self.tick()

    def refresh(self) -> None:
        """Poll now (or right after the running poll: polls never overlap), listing every server — the other
        polls ask the cloud only for what changed."""
        self.full = True
        if not self.app.built:
            return  # the first poll starts as soon as the tables are in place
        if self.busy:
            self.again = True
            return
        if self.timer is not None:
            self.timer.stop()
        self.tick()

    @work(thread=True, group="connect", exclusive=True, exit_on_error=False, name="connect to the cloud")
    def _connect(self) -> None:
        drawn = self.first_drawn = threading.Event()
        bridge = self.app.bridge

        def emit(event: Event) -> None:
            """The bridge; the first listing (before the engine exists) waits until it is on screen (see
            `on_polled`), so that openstacksdk's import, next in this thread, does not slow its drawing (one GIL)."""
            bridge(event)
            if self.engine is None and not drawn.is_set() and type(event).__name__ == "Polled":
                drawn.wait(FIRST_DRAW_WAIT_S)

        try:
            engine = self.app.engine_factory(emit)
        except base.CloudError as exc:
            self.post_message(msg.CloudFailed(exc))
        except Exception as exc:  # a broken profile, clouds.yaml or library: said, never a dead app
            self.app.log.error("connect", exc)
            self.post_message(msg.CloudFailed(base.CloudError(f"cannot connect: {exc}",
                                                              "check the profile and clouds.yaml")))
        else:
            self.post_message(msg.EngineReady(engine))

    @work(thread=True, group="poll", exclusive=True, exit_on_error=False, name="poll the cloud",
          description="poll the cloud")
    def _poll(self, engine: Engine, with_flavors: bool, full: bool) -> None:
        try:
            engine.poll(with_flavors, full)  # the result arrives as the core's Polled event
        except base.CloudError as exc:
            self.post_message(msg.CloudFailed(exc))
        except Exception as exc:
            self.app.log.error("poll", exc)
            self.post_message(msg.CloudFailed(base.CloudError(f"unexpected error while polling: {exc}")))

    def on_secret_wanted(self, message: cm.SecretWantedMessage) -> None:
        """Signing in needs a passcode or password clouds.yaml does not hold: ask in a dialog (the connecting
        thread waits for it). The watchdog pauses meanwhile: the user is typing, the cloud is not hanging."""
        from tui.ui.screens.signin import SecretPrompt

        if self.watchdog is not None:
            self.watchdog.stop()
            self.watchdog = None

        def answered(_: str | None) -> None:
            if self.busy and self.watchdog is None and not self.app.quitting:
                self.watchdog = self.app.set_timer(self.stuck_after_s, self._stuck)

        self.app.push_screen(SecretPrompt(message.event), answered)

    def on_engine_ready(self, message: msg.EngineReady) -> None:
        self.app.engine = message.engine
        settle_memory()  # openstacksdk's and asyncssh's modules are loaded now
        self.set_state("connected")
        self.again = True  # poll at once
        self.rearm()

    def on_polled(self, message: cm.PolledMessage) -> None:
        if self.engine is None:  # the first listing, read while the engine is built: shown, nothing re-armed
            self.app.fleet_changed()  # (it was folded in while the tables mounted)
            self.app.call_after_refresh(self.first_drawn.set)
            self.app.call_after_refresh(self.app.build_the_rest)  # (once: see CadesApp)
            return
        try:
            if self.state != "connected":
                if self.state in ("failed", "unconfigured"):
                    self.notify(f"Connected to {self.settings.cloud} again.", title="Cloud")
                self.set_state("connected")
            self.delay = self.settings.ui.refresh_s
            self.render_quota()
            self.app.remote.after_poll(message.event)
        finally:
            self.rearm()

    def on_cloud_failed(self, message: msg.CloudFailed) -> None:
        err = message.error
        self.delay = min(MAX_BACKOFF_S, max(self.settings.ui.refresh_s, self.delay * 2))
        if self.state not in ("failed", "unconfigured"):
            self.notify(f"{err.message}\n{err.hint}".strip(), title=f"Cloud {self.settings.cloud}",
                        severity="error", timeout=8)
        self.set_state("unconfigured" if isinstance(err, base.NoCloudConfigured) else "failed")
        self._show_banner(f"⚠ {err.message}" + (f" — {err.hint}" if err.hint else "")
                          + f"  (retrying in {self.delay:.0f} s)")
        self.rearm()

    def set_state(self, state: str) -> None:
        self.state = state
        if state == "unconfigured":  # not the sandbox: no cloud at all (the settings' default name says nothing)
            self.app.sub_title = "✗ no cloud configured: run with --demo, or add a clouds.yaml"
            return
        self.app.sub_title = f"{self.settings.cloud} " + {
            "connecting": "○ connecting…", "connected": "● connected", "failed": "✗ not connected"}[state]
        if state == "connected":
            self.app.banner.display = False

    def render_quota(self) -> None:
        quota = self.fleet.quota
        if quota is not None and self.app.built:
            table = self.app.flavors_pane.table
            table.show(list(self.fleet.flavors), quota)
            self.app.quota_bar.show(quota, table.selected, self.burn_rate())

    def burn_rate(self) -> str:
        """The burn rate now by the profile's cost model ("3 SU/h"), "" without one (or before the engine)."""
        report = self.engine.cost(self.fleet.instances()) if self.engine is not None else None
        if report is None:
            return ""
        from tui.core.cost import per_hour

        return per_hour(report.burn_rate, report.unit)

    def on_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "flavors-table":
            self.render_quota()
