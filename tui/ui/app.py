"""The Textual app: layout, key bindings (with ids, remappable), the one handler of worker failures, and routing.

What a key or a message does is an owner's (`tui.ui.areas`, one object each, reached as `app.polling`, …): Textual
dispatches both to the App, whose `action_*`/`on_*` methods at the end delegate in one line. The core's events come
through one bridge (`tui.ui.bridge`): folded into the live state (`self.fleet`), which the panes observe, then posted
as messages (`tui.ui.core_messages`)."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.signal import Signal
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerState

from tui.ui.areas import cluster, instances, jobs, jupyter, leave, polling, remote, setup, tunnels, volumes
from tui.ui.keys import BINDINGS, MAIN_SCREEN_ACTIONS, PANES, actions_provider
from tui.ui.widgets.panes import FlavorsPane, InstancesPane, QuotaBar, SetupPane, TunnelsPane

if TYPE_CHECKING:
    from collections.abc import Mapping

    from textual.actions import ActionParseResult
    from textual.dom import DOMNode
    from textual.notifications import SeverityLevel
    from textual.widgets import DataTable

    from tui.core.api import Engine, EngineFactory
    from tui.core.config import Settings
    from tui.core.live import Fleet
    from tui.ui import core_messages as cm
    from tui.ui import messages as msg
    from tui.ui.bridge import EventBridge
    from tui.ui.images import ImageDone, ImageProgress
    from tui.ui.screens.volumes import VolumesScreen
    from tui.ui.screens.wizard import LaunchWizard

log = logging.getLogger("tui.ui")
REST_AFTER_S = 0.3  # with `table_first`: the other panes' content waits this long at most for the first listing


class CadesApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "cades-tui"
    COMMANDS = App.COMMANDS | {actions_provider}
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
        self.engine: Engine | None = None  # set when the core is built (`Polling.on_engine_ready`)
        self._fleet: Fleet | None = None
        self.fleet_signal: Signal[None] = Signal(self, "fleet")
        self.built = False  # the other panes' content is mounted (the Instances table comes first)
        self.quitting = False
        # the owners of the app's behaviour (tui/ui/areas), one attribute each
        self.polling = polling.Polling(self)
        self.jobs = jobs.RemoteJobs(self)
        self.instances = instances.Instances(self)
        self.volumes = volumes.Volumes(self)
        self.setup = setup.Setup(self)
        self.jupyter = jupyter.Jupyter(self)
        self.tunnels = tunnels.TunnelKeys(self)
        self.remote = remote.Remote(self)
        self.clusters = cluster.Clusters(self)
        self.leave = leave.Leave(self)
        from tui.ui.forwards import Forwards

        self.user_forwards = Forwards(self)  # the user's own forwards (a, space, delete on the Tunnels pane)
        if settings.ui.theme:
            self.theme = settings.ui.theme
        from tui.ui.images import ImageMaker

        self.images = ImageMaker(self, lambda title, line, failed: self.setup_pane.job_line(
            title, line, failed, time.monotonic()), self.instances.selected_instance)

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
        self.quota_bar = self.query_one(QuotaBar)
        self.instances_pane = self.query_one(InstancesPane)
        self.flavors_pane = self.query_one(FlavorsPane)
        self.setup_pane = self.query_one(SetupPane)
        self.tunnels_pane = self.query_one(TunnelsPane)
        self.banner = self.query_one("#banner", Static)
        self.banner.display = False
        self.set_keymap(self.settings.keymap)
        self.polling.set_state("connecting")
        if self._table_first:
            await self.instances_pane.build()

    async def on_ready(self) -> None:
        """The first frame (frames, titles, hints, keys) is on screen: now start building the core (a thread:
        the first listing, then openstacksdk's import) and mount the Instances table meanwhile. The other panes'
        content is mounted after the messages already queued — the first listing among them, usually — so the
        instances are on screen one layout sooner; the core's answers are messages, handled after this, so they
        always find the Instances table in place (and the rest is drawn once built: see `built`)."""
        if not gc.isenabled():  # `run_app` held collections off until the first frame: ~15 ms of them
            gc.enable()
            polling.settle_memory()  # what start-up made is exempt from later collections; the young generation: empty
        from tui.ui.bridge import EventBridge

        self.bridge: EventBridge = EventBridge(self.fleet, self.post_message, lambda: self.message_queue_size,
                                               lambda _ids: self.fleet_changed())
        self.polling.start()  # the cloud's first answers travel while the table mounts (handled after this)
        if not self._table_first:
            await self.instances_pane.build()
        self.fleet_signal.subscribe(self, self._redraw)
        self.instances_pane.table.focus()
        if self._table_first:  # the listing first (see `Polling.on_polled`), unless it is slow to come
            self.set_timer(REST_AFTER_S, self.build_the_rest)
        else:
            self.call_later(self.build_the_rest)

    async def build_the_rest(self) -> None:
        if self._rest_started:
            return
        self._rest_started = True
        # all at once: awaited one by one, each mount was a cycle of its own (layout, frame) before the next
        await asyncio.gather(*(pane.build() for pane in (self.flavors_pane, self.setup_pane, self.tunnels_pane)))
        self.built = True
        self._redraw(None)  # what came while they mounted
        polling.settle_memory()

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
        self.instances_pane.show(self.fleet, now)
        self.tunnels.render()
        self.polling.render_quota()
        self.volumes.render()

    # ---- keys, help, palette -------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action not in MAIN_SCREEN_ACTIONS or len(self.screen_stack) == 1

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
        if event.state is WorkerState.ERROR and not self.quitting:
            error = worker.error
            log.error("%s failed", worker.name or "a background task", exc_info=error)
            self.notify(f"{type(error).__name__}: {error}\nDetails are in the app log.",
                        title=f"{(worker.name or 'A task').capitalize()} failed", severity="error", timeout=12)

    # ---- Textual dispatches key actions and messages to the App: each goes to its owner (tui/ui/areas) -----------
    # polling
    def action_refresh(self) -> None: self.polling.refresh()
    def on_app_blur(self) -> None: self.polling.on_app_blur()
    def on_app_focus(self) -> None: self.polling.on_app_focus()
    def on_engine_ready(self, message: msg.EngineReady) -> None: self.polling.on_engine_ready(message)
    def on_cloud_failed(self, message: msg.CloudFailed) -> None: self.polling.on_cloud_failed(message)
    def on_polled(self, message: cm.PolledMessage) -> None: self.polling.on_polled(message)
    def on_secret_wanted(self, message: cm.SecretWantedMessage) -> None: self.polling.on_secret_wanted(message)
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.polling.on_row_highlighted(event)
    # instances
    def action_launch(self) -> None: self.instances.launch()
    def action_resize(self) -> None: self.instances.resize()
    def action_power(self) -> None: self.instances.power()
    def action_reboot(self) -> None: self.instances.reboot()
    def action_delete(self) -> None: self.instances.delete()
    def action_shelve(self) -> None: self.instances.shelve()
    def action_console(self) -> None: self.instances.console()
    def action_details(self) -> None: self.instances.details()
    def action_filter(self) -> None: self.instances.filter()
    def on_launch_choices(self, message: msg.LaunchChoices) -> None: self.instances.on_launch_choices(message)
    def on_launch_wizard_launch(self, message: LaunchWizard.Launch) -> None:
        self.instances.on_launch_wizard_launch(message)
    def on_action_progress(self, message: msg.ActionProgress) -> None: self.instances.on_action_progress(message)
    def on_action_done(self, message: msg.ActionDone) -> None: self.instances.on_action_done(message)
    def on_action_failed(self, message: msg.ActionFailed) -> None: self.instances.on_action_failed(message)
    def on_console_loaded(self, message: msg.ConsoleLoaded) -> None: self.instances.on_console_loaded(message)
    def on_instance_details(self, message: msg.InstanceDetails) -> None: self.instances.on_instance_details(message)
    # volumes
    def action_volumes(self) -> None: self.volumes.show()
    def on_volumes_loaded(self, message: msg.VolumesLoaded) -> None: self.volumes.on_volumes_loaded(message)
    def on_volumes_screen_request(self, message: VolumesScreen.Request) -> None:
        self.volumes.on_volumes_screen_request(message)
    # remote jobs: setup, Jupyter, tunnels, the instances' remote life
    def on_remote_result(self, message: msg.RemoteResult) -> None: self.jobs.on_remote_result(message)
    def action_setup(self) -> None: self.setup.start()
    def action_cancel_setup(self) -> None: self.setup.cancel()
    def on_setup_progress(self, message: cm.SetupProgressMessage) -> None: self.setup.on_setup_progress(message)
    def action_jupyter_start(self) -> None: self.jupyter.start()
    def action_jupyter_stop(self) -> None: self.jupyter.stop()
    def action_jupyter_log(self) -> None: self.jupyter.log()
    def action_open_browser(self) -> None: self.jupyter.open_browser()
    def on_jupyter_state(self, message: cm.JupyterStateMessage) -> None: self.jupyter.on_jupyter_state(message)
    def on_log_lines(self, message: cm.LogLinesMessage) -> None: self.jupyter.on_log_lines(message)
    def action_open_tunnel(self) -> None: self.tunnels.open()
    def action_close_tunnel(self) -> None: self.tunnels.close()
    def action_forward_add(self) -> None: self.user_forwards.add()
    def action_forward_toggle(self) -> None: self.user_forwards.toggle()
    def action_shell(self) -> None: self.remote.shell()
    def action_vscode(self) -> None: self.remote.vscode()
    def action_transfers(self) -> None: self.remote.open_transfers()
    def action_autostop(self) -> None: self.remote.set_autostop()
    def action_autostop_keep(self) -> None: self.remote.keep_autostop()
    def on_autostop_state(self, message: cm.AutostopStateMessage) -> None: self.remote.on_autostop_state(message)
    def action_snooze(self) -> None: self.remote.snooze()
    def on_connection_state(self, message: cm.ConnectionStateMessage) -> None: self.remote.on_connection_state(message)
    def on_background_failed(self, message: cm.BackgroundFailedMessage) -> None:
        self.remote.on_background_failed(message)
    def on_host_keys_unpinned(self, message: cm.HostKeysUnpinnedMessage) -> None:
        self.remote.on_host_keys_unpinned(message)
    def on_host_key_question(self, message: cm.HostKeyQuestionMessage) -> None:
        self.remote.on_host_key_question(message)
    def on_idle_nudge(self, message: cm.IdleNudgeMessage) -> None: self.remote.on_idle_nudge(message)
    # clusters
    def action_cluster(self) -> None: self.clusters.show()
    def action_cluster_create(self) -> None: self.clusters.create()
    def action_cluster_grow(self) -> None: self.clusters.grow()
    def action_cluster_shrink(self) -> None: self.clusters.shrink()
    def action_cluster_dashboard(self) -> None: self.clusters.dashboard()
    def action_cluster_delete(self) -> None: self.clusters.delete()
    def on_cluster_progress(self, message: cm.ClusterProgressMessage) -> None:
        self.clusters.on_cluster_progress(message)
    def on_cluster_state(self, message: cm.ClusterStateMessage) -> None: self.clusters.on_cluster_state(message)
    # images (tui.ui.images.ImageMaker)
    def action_image(self) -> None: self.images.start()
    def on_image_progress(self, message: ImageProgress) -> None: self.images.progress(message)
    def on_image_done(self, message: ImageDone) -> None: self.images.done(message)
    # leaving
    async def action_quit(self) -> None: self.leave.quit()
    def action_interrupt(self) -> None: self.leave.interrupt()
    async def on_unmount(self) -> None: await self.leave.close()
