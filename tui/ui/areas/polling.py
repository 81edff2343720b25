"""Connecting and polling the cloud: one poll at a time (re-armed when it ends, in `finally`), backing off while
the cloud fails and while the terminal is not focused, a watchdog that says when it hangs; each poll's result
arrives as the core's `Polled` event — the first one possibly before the engine exists (read with the cached
token while openstacksdk loads: `tui.core.cloud.quick`)."""

from __future__ import annotations

import gc
import threading
from typing import TYPE_CHECKING

from textual import work
from textual.timer import Timer

from tui.ui.areas.base import Area, base, msg

if TYPE_CHECKING:
    from textual.widgets import DataTable, Static

    from tui.core.api import Engine, EngineFactory
    from tui.core.events import Polled, SecretWanted
    from tui.ui.bridge import CoreMessage

MAX_BACKOFF_S = 60.0
FIRST_DRAW_WAIT_S = 1.0  # the longest the core's build waits for the first listing to be drawn
UNFOCUSED_S = 30.0  # at least this long between polls while the terminal says it is not focused
FLAVORS_EVERY = 6  # re-read flavors on every 6th poll (they rarely change)


def settle_memory() -> None:
    """Exempt what is loaded so far (modules, classes, the widget tree) from Python's full garbage collections:
    with Textual, openstacksdk and asyncssh loaded a full collection is a 50-80 ms pause that lands on key presses
    while a log streams. Frozen objects are still freed by reference counting."""
    gc.freeze()


class PollingArea(Area):
    engine_factory: EngineFactory
    state: str
    _delay: float
    _timer: Timer | None
    _watchdog: Timer | None
    _busy: bool
    _built: bool
    _banner: Static
    _again: bool
    _full: bool = False  # the next poll lists every server (F5, after an action)
    _first_drawn: threading.Event = threading.Event()  # set when the first listing is on screen
    _polls: int
    stuck_after_s: float

    def start_polling(self) -> None:
        self._tick()

    def _tick(self) -> None:
        self._timer = None
        self._busy = True
        self._watchdog = self.set_timer(self.stuck_after_s, self._stuck)
        if self.engine is None:
            self._connect()
        else:
            self._polls += 1
            full, self._full = self._full, False
            self._poll(self.engine, not self.fleet.flavors or self._polls % FLAVORS_EVERY == 0, full)

    def _stuck(self) -> None:
        """A connect or poll has not returned: say so (the screen stays live; the worker keeps waiting)."""
        self._watchdog = None
        self._set_state("failed")
        self._show_banner(f"⚠ The cloud has not answered for {self.stuck_after_s:.0f} s — still waiting. "
                          "Check your network/VPN and the cloud's status page.")

    def _show_banner(self, text: str) -> None:
        self._banner.update(text)
        self._banner.display = True
        self._instances_pane.waiting(f"No data: {text.lstrip('⚠ ')}")

    def _rearm(self) -> None:
        self._busy = False
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None
        if self._quitting:
            return
        if self._again:
            self._again = False
            self._tick()
        else:
            delay = self._delay if self.app_focus else max(self._delay, UNFOCUSED_S)
            self._timer = self.set_timer(delay, self._tick)

    def on_app_blur(self) -> None:
        """The terminal lost focus (where it tells): the next polls wait UNFOCUSED_S (see `_rearm`)."""
        if self._timer is not None and not self._busy:
            self._timer.stop()
            self._timer = self.set_timer(max(self._delay, UNFOCUSED_S), self._tick)

    def on_app_focus(self) -> None:
        """Back in front: poll now rather than at the end of a long unfocused wait."""
        if self._timer is not None and not self._busy:
            self._timer.stop()
            self._tick()

    def action_refresh(self) -> None:
        """Poll now (or right after the running poll: polls never overlap), listing every server — the other
        polls ask the cloud only for what changed."""
        self._full = True
        if not self._built:
            return  # the first poll starts as soon as the tables are in place
        if self._busy:
            self._again = True
            return
        if self._timer is not None:
            self._timer.stop()
        self._tick()

    @work(thread=True, group="connect", exclusive=True, exit_on_error=False, name="connect to the cloud")
    def _connect(self) -> None:
        drawn = self._first_drawn = threading.Event()
        bridge = self.bridge  # type: ignore[attr-defined]

        def emit(event: object) -> None:
            """The bridge; the first listing (before the engine exists) waits until it is on screen (see
            `on_polled`), so that openstacksdk's import, next in this thread, does not slow its drawing (one GIL)."""
            bridge(event)
            if self.engine is None and not drawn.is_set() and type(event).__name__ == "Polled":
                drawn.wait(FIRST_DRAW_WAIT_S)

        try:
            engine = self.engine_factory(emit)
        except base.CloudError as exc:
            self.post_message(msg.CloudFailed(exc))
        except Exception as exc:  # a broken profile, clouds.yaml or library: said, never a dead app
            self.log.error("connect", exc)
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
            self.log.error("poll", exc)
            self.post_message(msg.CloudFailed(base.CloudError(f"unexpected error while polling: {exc}")))

    def on_secret_wanted(self, message: CoreMessage[SecretWanted]) -> None:
        """Signing in needs a passcode or password clouds.yaml does not hold: ask in a dialog (the connecting
        thread waits for it). The watchdog pauses meanwhile: the user is typing, the cloud is not hanging."""
        from tui.ui.screens.signin import SecretPrompt

        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None

        def answered(_: str | None) -> None:
            if self._busy and self._watchdog is None and not self._quitting:
                self._watchdog = self.set_timer(self.stuck_after_s, self._stuck)

        self.push_screen(SecretPrompt(message.event), answered)

    def on_engine_ready(self, message: msg.EngineReady) -> None:
        self.engine = message.engine
        settle_memory()  # openstacksdk's and asyncssh's modules are loaded now
        self._set_state("connected")
        self._again = True  # poll at once
        self._rearm()

    def on_polled(self, message: CoreMessage[Polled]) -> None:
        if self.engine is None:  # the first listing, read while the engine is built: shown, nothing re-armed
            self.fleet_changed()  # type: ignore[attr-defined]  # (it was folded in while the tables mounted)
            self.call_after_refresh(self._first_drawn.set)
            self.call_after_refresh(self._build_the_rest)  # type: ignore[attr-defined]  # (once: see CadesApp)
            return
        try:
            if self.state != "connected":
                if self.state in ("failed", "unconfigured"):
                    self.notify(f"Connected to {self.settings.cloud} again.", title="Cloud")
                self._set_state("connected")
            self._delay = self.settings.ui.refresh_s
            self.render_quota()
            self.after_poll(message.event)  # type: ignore[attr-defined]
        finally:
            self._rearm()

    def on_cloud_failed(self, message: msg.CloudFailed) -> None:
        err = message.error
        self._delay = min(MAX_BACKOFF_S, max(self.settings.ui.refresh_s, self._delay * 2))
        if self.state not in ("failed", "unconfigured"):
            self.notify(f"{err.message}\n{err.hint}".strip(), title=f"Cloud {self.settings.cloud}",
                        severity="error", timeout=8)
        self._set_state("unconfigured" if isinstance(err, base.NoCloudConfigured) else "failed")
        self._show_banner(f"⚠ {err.message}" + (f" — {err.hint}" if err.hint else "")
                          + f"  (retrying in {self._delay:.0f} s)")
        self._rearm()

    def _set_state(self, state: str) -> None:
        self.state = state
        if state == "unconfigured":  # not the sandbox: no cloud at all (the settings' default name says nothing)
            self.sub_title = "✗ no cloud configured: run with --demo, or add a clouds.yaml"
            return
        self.sub_title = f"{self.settings.cloud} " + {
            "connecting": "○ connecting…", "connected": "● connected", "failed": "✗ not connected"}[state]
        if state == "connected":
            self._banner.display = False

    def render_quota(self) -> None:
        quota = self.fleet.quota
        if quota is not None and self._built:
            table = self._flavors_pane.table
            table.show(list(self.fleet.flavors), quota)
            self._quota_bar.show(quota, table.selected, self.burn_rate())

    def burn_rate(self) -> str:
        """The burn rate now by the profile's cost model ("3 SU/h"), "" without one (or before the engine)."""
        report = self.engine.cost(self.fleet.instances()) if self.engine is not None else None
        if report is None:
            return ""
        from tui.core.cost import per_hour

        return per_hour(report.burn_rate, report.unit)

    def action_filter(self) -> None:
        """`/`: the Instances table's filter line (the table observes the polled instances; it hides rows only)."""
        if self._built:
            self._instances_pane.table.open_filter()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "flavors-table":
            self.render_quota()
