"""The Textual app: layout, key bindings (with ids, remappable), routing, and the one handler of worker failures.

What each key does lives in an area module (`tui.ui.areas`): cloud polling, instances, volumes, setup, Jupyter,
tunnels, and the instances' remote life. The core reaches the app through one bridge (`tui.ui.bridge`) that folds
its events into the live state (`self.fleet`) — which the panes observe — and posts them as messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.signal import Signal
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerState

from tui.core.hints import command
from tui.ui.areas.cluster import ClusterArea
from tui.ui.areas.instances import InstancesArea
from tui.ui.areas.interrupt import QUIT_ASK, InterruptArea
from tui.ui.areas.jupyter import JupyterArea
from tui.ui.areas.polling import PollingArea, settle_memory
from tui.ui.areas.remote import IDLE_EVERY, RemoteArea
from tui.ui.areas.setup import SetupArea
from tui.ui.areas.tunnels import TunnelsArea
from tui.ui.areas.volumes import VolumesArea
from tui.ui.keys import BINDINGS, MAIN_SCREEN_ACTIONS, PANES, key_text
from tui.ui.widgets.panes import FlavorsPane, InstancesPane, QuotaBar, SetupPane, TunnelsPane

if TYPE_CHECKING:
    from collections.abc import Mapping

    from textual.actions import ActionParseResult
    from textual.command import Provider
    from textual.dom import DOMNode
    from textual.notifications import SeverityLevel

    from tui.core.api import EngineFactory
    from tui.core.config import Settings
    from tui.core.live import Fleet
    from tui.ui.bridge import EventBridge

log = logging.getLogger("tui.ui")


def _actions_provider() -> type[Provider]:
    """The palette's provider, imported when the palette first opens (textual.command is slow to import)."""
    from tui.ui.widgets.commands import ActionsProvider

    return ActionsProvider


REST_AFTER_S = 0.3  # with `table_first`: the other panes' content waits this long at most for the first listing


class CadesApp(PollingArea, InstancesArea, VolumesArea, SetupArea, JupyterArea, TunnelsArea, ClusterArea,
               RemoteArea, InterruptArea, App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "cades-tui"
    COMMANDS = App.COMMANDS | {_actions_provider}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS: ClassVar[list[Binding]] = BINDINGS  # type: ignore[assignment]

    def __init__(self, settings: Settings, engine_factory: EngineFactory, *,
                 clock: Callable[[], datetime] | None = None, table_first: bool = False) -> None:
        """`table_first`: the first listing is already on its way (read on a cached token while Textual loaded):
        mount the Instances table before the first frame, so the listing lands in it without another layout."""
        super().__init__()
        self._table_first = table_first
        self._rest_started = False
        self.settings = settings
        self.engine_factory = engine_factory
        self.clock = clock or (lambda: datetime.now(UTC))
        self.engine = None
        self._fleet: Fleet | None = None
        self.fleet_signal: Signal[None] = Signal(self, "fleet")
        self.state = "connecting"
        self._delay = settings.ui.refresh_s
        self._timer = self._watchdog = self._idle_timer = None
        self._busy = self._built = self._again = self._reattached = self._quitting = False
        self._polls = 0
        self.stuck_after_s = max(20.0, 4 * settings.ui.refresh_s)  # say so when a poll hangs this long
        self.idle_every_s = settings.ui.refresh_s * IDLE_EVERY
        self._wizard = self._volumes_screen = self._log_screen = self._cluster_screen = None
        self._remote_jobs: set[tuple[str, str]] = set()  # (action, instance id) of remote jobs in progress
        self._transfers = None  # the Transfers view's queue (tui.ui.transfers), made when first opened
        self._clusters: set[str] = set()  # heads whose scheduler answered last time it was asked
        self._leftovers_offered: set[str] = set()  # heads whose leftovers were offered for deletion already
        if settings.ui.theme:
            self.theme = settings.ui.theme

    # ---- layout --------------------------------------------------------------------------------
    def get_default_screen(self) -> Screen[None]:
        """The main screen, its width's breakpoint class (-narrow/-wide) set from the start. Textual sets it on the
        first Resize, just before the first frame, and restyles every widget again for it (~15 ms)."""
        screen = super().get_default_screen()
        width = self.size.width
        screen.add_class(next(name for edge, name in sorted(self.HORIZONTAL_BREAKPOINTS, reverse=True)
                              if width >= edge), update=False)
        return screen

    def compose(self) -> ComposeResult:
        yield Header(icon="☁")
        yield Static("", id="banner")
        yield QuotaBar()
        with Container(id="panes"):
            yield InstancesPane()
            yield FlavorsPane()
            yield SetupPane()
            yield TunnelsPane()
        yield Footer(compact=True, show_command_palette=False)

    async def on_mount(self) -> None:
        # Handlers keep references: a late message during shutdown must not fail a query.
        self._quota_bar = self.query_one(QuotaBar)
        self._instances_pane = self.query_one(InstancesPane)
        self._flavors_pane = self.query_one(FlavorsPane)
        self._setup_pane = self.query_one(SetupPane)
        self._tunnels_pane = self.query_one(TunnelsPane)
        self._banner = self.query_one("#banner", Static)
        self._banner.display = False
        self.set_keymap(self.settings.keymap)
        self._set_state("connecting")
        if self._table_first:
            await self._instances_pane.build()

    async def on_ready(self) -> None:
        """The first frame (frames, titles, hints, keys) is on screen: now start building the core (a thread:
        the first listing, then openstacksdk's import) and mount the Instances table meanwhile. The other panes'
        content is mounted after the messages already queued — the first listing among them, usually — so the
        instances are on screen one layout sooner; the core's answers are messages, handled after this, so they
        always find the Instances table in place (and the rest is drawn once built: see `_built`)."""
        if not gc.isenabled():  # `run_app` held collections off until the first frame: ~15 ms of them
            gc.enable()
            settle_memory()  # what start-up made is exempt from later collections; the young generation starts empty
        from tui.ui.bridge import EventBridge

        self.bridge: EventBridge = EventBridge(self.fleet, self.post_message, lambda: self.message_queue_size,
                                               lambda _ids: self.fleet_changed())
        self.start_polling()  # the cloud's first answers travel while the table mounts (handled after this)
        if not self._table_first:
            await self._instances_pane.build()
        self.fleet_signal.subscribe(self, self._redraw)
        self._instances_pane.table.focus()
        if self._table_first:  # the listing first (see `PollingArea.on_polled`), unless it is slow to come
            self.set_timer(REST_AFTER_S, self._build_the_rest)
        else:
            self.call_later(self._build_the_rest)

    async def _build_the_rest(self) -> None:
        if self._rest_started:
            return
        self._rest_started = True
        # all at once: awaited one by one, each mount was a cycle of its own (layout, frame) before the next
        await asyncio.gather(*(pane.build() for pane in (self._flavors_pane, self._setup_pane, self._tunnels_pane)))
        self._built = True
        self._redraw(None)  # what came while they mounted
        settle_memory()

    # ---- the live state, observed ------------------------------------------------------------------
    @property
    def fleet(self) -> Fleet:
        """The live state, made on first use: in `on_ready`, after the first frame (or sooner, if a key asks). Its
        module brings the core's models and events — some 40 dataclasses, ~30 ms to create — so they stay off the
        first frame's path."""
        if self._fleet is None:
            from tui.core.live import Fleet

            self._fleet = Fleet()
        return self._fleet

    def fleet_changed(self) -> None:
        """Something in the live state changed: observers redraw what changed (after the current message)."""
        self.fleet_signal.publish(None)

    def _redraw(self, _: None) -> None:
        now = self.clock()
        self._instances_pane.show(self.fleet, now)
        self.render_tunnels()
        self.render_quota()
        self.show_volumes()

    # ---- keys, help, palette -------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action not in MAIN_SCREEN_ACTIONS or len(self.screen_stack) == 1

    def binding_rows(self) -> list[tuple[str, str, str, str]]:
        """(keys as displayed, description, tooltip, action) for every binding, after the keymap."""
        from tui.ui.screens.cluster import BINDINGS as CLUSTER
        from tui.ui.widgets.tables import InstancesTable, TunnelsTable

        rows = []
        cluster = [b for b in CLUSTER if b.action.startswith("app.")]
        for binding in [*self.BINDINGS, *InstancesTable.BINDINGS, *TunnelsTable.BINDINGS, *cluster]:
            assert isinstance(binding, Binding)
            action = binding.action if "." in binding.action.split("(")[0] else f"app.{binding.action}"
            rows.append((key_text(self, binding), binding.description, binding.tooltip, action))
        return rows

    def action_help(self) -> None:
        from tui.ui.screens.help import HelpScreen, help_groups

        self.push_screen(HelpScreen(help_groups(self)))

    def action_focus_pane(self, pane: str) -> None:
        target = self.query(PANES[pane])  # empty in the few ms before the panes are built
        if target:
            target.first().focus()

    # ---- the app log: what the user did and was told ----------------------------------------------
    async def run_action(self, action: str | ActionParseResult, default_namespace: DOMNode | None = None,
                         namespaces: Mapping[str, DOMNode] | None = None) -> bool:
        """Every action of the app or a screen — from a key, the palette or a button — goes to the app log (a
        widget's own, the cursor's moves or typing, do not)."""
        from textual.screen import Screen

        if isinstance(action, str) and (default_namespace in (None, self) or isinstance(default_namespace, Screen)
                                        or action.startswith("app.")):
            where = "" if default_namespace in (None, self) else f" on {type(default_namespace).__name__}"
            log.info("action %s%s", action.removeprefix("app."), where)
        return await super().run_action(action, default_namespace, namespaces)

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """What the user is told goes to the app log too: warnings and errors as such (masked, as every line)."""
        level = {"warning": logging.WARNING, "error": logging.ERROR}.get(severity, logging.INFO)
        log.log(level, "%s%s", f"{title}: " if title else "", message.replace("\n", " | "))
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    # ---- failures: one handler for every worker ---------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that raised is never silent: a notification names the action; the traceback goes to the log."""
        worker = event.worker
        if event.state is WorkerState.ERROR and not self._quitting:
            error = worker.error
            log.error("%s failed", worker.name or "a background task", exc_info=error)
            self.notify(f"{type(error).__name__}: {error}\nDetails are in the app log.",
                        title=f"{(worker.name or 'A task').capitalize()} failed", severity="error", timeout=12)

    # ---- quitting ------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        self._quit()

    @work(group="quit", exclusive=True, exit_on_error=False, name="quit")
    async def _quit(self, ask: bool = False) -> None:
        """Leave; while a setup runs, ask first (quitting cancels it); with `ask` (Ctrl+C), ask anyway."""
        from tui.ui.screens.confirm import Confirm

        setups, clusters = self.running_setups(), self.running_cluster_work()
        if ask and not setups and not clusters and not await self.push_screen_wait(Confirm(
                "Quit cades-tui?", "Instances, Jupyter and Dask clusters keep running; tunnels re-open on the next "
                "start. Ctrl+C again quits.", "Quit", screen_id=QUIT_ASK)):
            return
        if setups and not await self.push_screen_wait(Confirm(
                f"Quit while setup runs on {', '.join(setups)}?",
                "Quitting cancels the setup: the step running now stops. Press s on the instance later to run it "
                "again (finished steps are skipped).", "Quit", danger=True)):
            return
        if clusters and not await self.push_screen_wait(Confirm(
                f"Quit while cluster work runs on {', '.join(clusters)}?",
                "Quitting stops it half-way: instances already launched and sessions already started stay. Press k "
                "on the head later and create again: what exists is adopted, the rest is done.", "Quit",
                danger=True)):
            return
        running, clusters = self.fleet.running_jupyter(), self.running_clusters()
        await self._close_remote()
        parts = []
        if running:
            parts.append(f"Jupyter keeps running on {', '.join(running)}; its tunnels are closed. "
                         "Start cades-tui again to reattach (tunnels re-open), or stop it with "
                         f"`{command('jupyter', 'stop', 'NAME')}`.")
        if clusters:
            parts.append(f"The Dask cluster on {', '.join(clusters)} keeps running: k on its head shows it again, "
                         f"`{command('cluster', 'delete', 'HEAD')}` ends it.")
        self.exit(message="\n".join(parts) or None)

    async def _close_remote(self) -> None:
        self._quitting = True
        for timer in (self._idle_timer, self._timer, self._watchdog):
            if timer is not None:
                timer.stop()
        engine, self.engine = self.engine, None
        if engine is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(engine.aclose(), 10)

    async def on_unmount(self) -> None:
        await self._close_remote()
