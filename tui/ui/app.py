"""The Textual app: four panes over the cloud, keys for every action, polling that never overlaps.

Cloud calls block, so they run only in thread workers (`group=` on each) that post messages from
`tui.ui.messages`; the handlers here are the only code that updates widgets. Destructive actions ask first
with `await push_screen_wait(...)` inside an async worker, then hand the call to a thread worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.timer import Timer
from textual.widgets import Footer, Header, Static

from tui.ui.lazy import lazy
from tui.ui.widgets.format import mb, volume_label
from tui.ui.widgets.panes import FlavorsPane, InstancesPane, QuotaBar, SetupPane, TunnelsPane

if TYPE_CHECKING:  # the screens load on first use: the first frame does not wait for them
    from textual.command import Provider
    from textual.widgets import DataTable

    from tui.core.cloud import base
    from tui.core.cloud.base import Cloud, LaunchSpec
    from tui.core.config import Settings
    from tui.core.jupyter.server import KernelInfo
    from tui.core.manager import JupyterState, ManagerOptions, RemoteManager
    from tui.core.models import Flavor, Instance, Quota, TunnelInfo, Volume
    from tui.core.services import RemoteContext, Services
    from tui.ui import messages as msg
    from tui.ui.messages import (
        ActionDone,
        ActionFailed,
        ActionProgress,
        CloudConnected,
        CloudFailed,
        ConsoleLoaded,
        EventBridge,
        HostKeyAsked,
        IdleNudged,
        InstanceDetails,
        JupyterChanged,
        JupyterLog,
        LaunchChoices,
        Polled,
        RemoteResult,
        SetupEvents,
        SshStateChanged,
        TunnelUpdated,
        VolumesLoaded,
    )
    from tui.ui.screens.jupyter_log import JupyterLogScreen
    from tui.ui.screens.volumes import VolumesScreen
    from tui.ui.screens.wizard import LaunchWizard
else:  # loaded on first use, after the first frame
    msg = lazy("tui.ui.messages")
    base = lazy("tui.core.cloud.base")

MAX_BACKOFF_S = 60.0
FLAVORS_EVERY = 6  # re-read flavors on every 6th poll (they rarely change)
# Actions on the main screen only: with a dialog open, its keys must not act on the instance beneath.
MAIN_SCREEN_ACTIONS = {"launch", "resize", "power", "reboot", "delete", "console", "volumes", "details",
                       "focus_pane", "help", "quit", "setup", "jupyter_start", "jupyter_stop", "jupyter_log",
                       "open_tunnel", "close_tunnel", "open_browser", "shell", "snooze"}
IDLE_EVERY = 36  # idle check every 36 refreshes (3 minutes with the default 5 s)
PANES = {"instances": "#instances-table", "flavors": "#flavors-table", "setup": "#setup-log",
         "tunnels": "#tunnels-table"}


def settle_memory() -> None:
    """Exempt what is loaded so far (modules, classes, the widget tree) from Python's full garbage collections.

    A full collection walks every tracked object: with Textual, openstacksdk and asyncssh loaded that is a 50-80 ms
    pause, which lands on a key press now and then while a log streams. Frozen objects are still freed by
    reference counting; only cycles among them would outlive their use, and at these moments (after loading)
    there are next to none."""
    gc.freeze()


def _actions_provider() -> type[Provider]:
    """The palette's provider, imported when the palette first opens (textual.command is slow to import)."""
    from tui.ui.widgets.commands import ActionsProvider

    return ActionsProvider


class CadesApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "cades-tui"
    COMMANDS = App.COMMANDS | {_actions_provider}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]

    BINDINGS: ClassVar[list[Binding]] = [  # type: ignore[assignment]
        Binding("question_mark", "help", "Help", id="help", tooltip="List every key"),
        Binding("q", "quit", "Quit", id="quit",
                tooltip="Leave cades-tui (instances and Jupyter keep running; tunnels re-open on the next start)"),
        Binding("n", "launch", "New", id="launch",
                tooltip="Launch a new instance: image, flavor, boot volume, key pair, network"),
        Binding("r", "resize", "Resize", id="resize",
                tooltip="Change the selected instance's flavor; confirm or revert afterwards"),
        Binding("p", "power", "Stop/Start", id="power", tooltip="Shut down the selected instance, or start it"),
        Binding("b", "reboot", "Reboot", id="reboot", tooltip="Reboot the selected instance"),
        Binding("ctrl+d", "delete", "Delete", id="delete",
                tooltip="Delete the selected instance (asks for its name; you choose what happens to volumes)"),
        Binding("c", "console", "Console", id="console",
                tooltip="Show the selected instance's console log"),
        Binding("v", "volumes", "Volumes", id="volumes",
                tooltip="List volumes; create+attach, detach or delete them"),
        Binding("s", "setup", "Setup", id="setup",
                tooltip="Install and configure Python + Jupyter on the selected instance (done steps are skipped)"),
        Binding("j", "jupyter_start", "Jupyter", id="jupyter.start",
                tooltip="Start Jupyter on the selected instance in a screen session, with a tunnel to it"),
        Binding("x", "jupyter_stop", "Stop Jupyter", id="jupyter.stop",
                tooltip="Stop Jupyter on the selected instance (asks first when kernels are busy)"),
        Binding("l", "jupyter_log", "Log", id="jupyter.log", tooltip="The selected instance's Jupyter log, live"),
        Binding("t", "open_tunnel", "Tunnel", id="tunnel.open",
                tooltip="Open a tunnel 127.0.0.1:port → the selected instance's Jupyter"),
        Binding("o", "open_browser", "Open", id="open",
                tooltip="Open Jupyter in the browser through the tunnel (URL with token copied too)"),
        Binding("ctrl+s", "shell", "Shell", id="shell",
                tooltip="Suspend the app and open an SSH shell on the selected instance; exit returns here"),
        Binding("z", "snooze", "Snooze", id="snooze",
                tooltip="Quiet the selected instance's idle reminders for a day"),
        Binding("f5", "refresh", "Refresh", id="refresh", tooltip="Poll the cloud now"),
        Binding("1", "focus_pane('instances')", "Instances", id="pane.instances", show=False,
                tooltip="Focus the Instances pane"),
        Binding("2", "focus_pane('flavors')", "Flavors", id="pane.flavors", show=False,
                tooltip="Focus the Flavors pane"),
        Binding("3", "focus_pane('setup')", "Setup log", id="pane.setup", show=False,
                tooltip="Focus the Setup log pane"),
        Binding("4", "focus_pane('tunnels')", "Tunnels", id="pane.tunnels", show=False,
                tooltip="Focus the Tunnels pane"),
        Binding("tab", "focus_next", "Next pane", id="pane.next", show=False, tooltip="Focus the next pane"),
        Binding("shift+tab", "focus_previous", "Previous pane", id="pane.previous", show=False,
                tooltip="Focus the previous pane"),
        Binding("ctrl+p", "command_palette", "Palette", id="palette", show=False,
                tooltip="Search every action by name"),
    ]

    def __init__(self, settings: Settings, cloud_factory: Callable[[], Cloud], *,
                 clock: Callable[[], datetime] | None = None, services: Services | None = None,
                 manager_options: ManagerOptions | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.cloud_factory = cloud_factory
        self.clock = clock or (lambda: datetime.now(UTC))
        self.cloud: Cloud | None = None
        self.instances: list[Instance] = []
        self.flavors: list[Flavor] = []
        self.volumes: list[Volume] = []
        self.quota: Quota | None = None
        self.state = "connecting"
        self._delay = settings.ui.refresh_s
        self._timer: Timer | None = None
        self._busy = False  # a connect or poll worker is running
        self._built = False  # the panes' tables are mounted (right after the first frame)
        self._again = False  # poll again as soon as the running poll ends
        self._polls = 0
        self._watchdog: Timer | None = None
        self.stuck_after_s = max(20.0, 4 * settings.ui.refresh_s)  # say so when a poll hangs this long
        self._wizard: LaunchWizard | None = None
        self._volumes_screen: VolumesScreen | None = None
        # remote (SSH, setup, Jupyter, tunnels): the manager is built after the cloud connects
        self.services = services
        self.manager_options = manager_options
        self.manager: RemoteManager | None = None
        self._bridge: EventBridge | None = None
        self._manager_lock = asyncio.Lock()
        self._contexts: dict[str, RemoteContext] = {}
        self.jupyter: dict[str, JupyterState] = {}
        self.ssh: dict[str, str] = {}  # instance id -> "lost" / "failed" while there is trouble
        self._ssh_up: set[str] = set()  # instances with a working SSH connection (a drop is worth a word)
        self.tunnels: dict[str, TunnelInfo] = {}
        self._remote_jobs: set[tuple[str, str]] = set()  # (action, instance id) of remote jobs in progress
        self._busy_kernels: dict[str, tuple[KernelInfo, ...]] = {}
        self._log_screen: JupyterLogScreen | None = None
        self._reattached = False
        self._quitting = False
        self._idle_timer: Timer | None = None
        self.idle_every_s = settings.ui.refresh_s * IDLE_EVERY
        if settings.ui.theme:
            self.theme = settings.ui.theme

    # ---- layout --------------------------------------------------------------------------------
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

    def on_mount(self) -> None:
        # Handlers keep references: a late message during shutdown must not fail a query.
        self._banner = self.query_one("#banner", Static)
        self._quota_bar = self.query_one(QuotaBar)
        self._instances_pane = self.query_one(InstancesPane)
        self._flavors_pane = self.query_one(FlavorsPane)
        self._setup_pane = self.query_one(SetupPane)
        self._tunnels_pane = self.query_one(TunnelsPane)
        self.set_keymap(self.settings.keymap)
        self._set_state("connecting")
        self._banner.display = False

    async def on_ready(self) -> None:
        """The first frame (frames, titles, hints, keys) is on screen: now mount the tables and logs, then build
        the cloud (imports openstacksdk, authenticates) — its answers always find the tables in place."""
        for pane in (self._instances_pane, self._flavors_pane, self._setup_pane, self._tunnels_pane):
            await pane.build()
        self._instances_table = self._instances_pane.table
        self._flavors_table = self._flavors_pane.table
        self._instances_table.focus()
        self._built = True
        settle_memory()
        self._tick()

    # ---- polling -------------------------------------------------------------------------------
    def _tick(self) -> None:
        self._timer = None
        self._busy = True
        self._watchdog = self.set_timer(self.stuck_after_s, self._stuck)
        if self.cloud is None:
            self._connect()
        else:
            self._polls += 1
            self._poll(self.cloud, not self.flavors or self._polls % FLAVORS_EVERY == 0)

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
        if self._again:
            self._again = False
            self._tick()
        else:
            self._timer = self.set_timer(self._delay, self._tick)

    def action_refresh(self) -> None:
        """Poll now (or right after the running poll: polls never overlap)."""
        if not self._built:
            return  # the first poll starts as soon as the tables are in place
        if self._busy:
            self._again = True
            return
        if self._timer is not None:
            self._timer.stop()
        self._tick()

    @work(thread=True, group="connect", exclusive=True, exit_on_error=False)
    def _connect(self) -> None:
        try:
            cloud = self.cloud_factory()
        except base.CloudError as exc:
            self.post_message(msg.CloudFailed(exc))
        except Exception as exc:  # a bug or an unexpected library error must not kill the app
            error = base.CloudError(f"cannot connect: {exc}", "check the profile and clouds.yaml")
            self.post_message(msg.CloudFailed(error))
        else:
            self.post_message(msg.CloudConnected(cloud))

    @work(thread=True, group="poll", exclusive=True, exit_on_error=False)
    def _poll(self, cloud: Cloud, with_flavors: bool) -> None:
        try:
            instances = cloud.list_instances()
            quota = cloud.get_quota()
            volumes = cloud.list_volumes()
            flavors = cloud.list_flavors() if with_flavors else None
        except base.CloudError as exc:
            self.post_message(msg.CloudFailed(exc))
        except Exception as exc:
            self.post_message(msg.CloudFailed(base.CloudError(f"unexpected error while polling: {exc}")))
        else:
            self.post_message(msg.Polled(instances, quota, volumes, flavors))

    def on_cloud_connected(self, message: CloudConnected) -> None:
        self.cloud = message.cloud
        settle_memory()  # openstacksdk's modules are loaded now
        self._set_state("connected")
        self._again = True  # poll at once
        self._rearm()

    def on_polled(self, message: Polled) -> None:
        self.instances, self.quota, self.volumes = message.instances, message.quota, message.volumes
        if message.flavors is not None:
            self.flavors = message.flavors
        if self.state != "connected":
            if self.state == "failed":
                self.notify(f"Connected to {self.settings.cloud} again.", title="Cloud")
            self._set_state("connected")
        self._delay = self.settings.ui.refresh_s
        self._render_data()
        self._rearm()
        self._forget_stale_contexts()
        if not self._reattached:
            self._reattached = True
            self._reattach()

    def on_cloud_failed(self, message: CloudFailed) -> None:
        err = message.error
        self._delay = min(MAX_BACKOFF_S, max(self.settings.ui.refresh_s, self._delay * 2))
        if self.state != "failed":
            self.notify(f"{err.message}\n{err.hint}".strip(), title=f"Cloud {self.settings.cloud}",
                        severity="error", timeout=8)
        self._set_state("failed")
        self._show_banner(f"⚠ {err.message}" + (f" — {err.hint}" if err.hint else "")
                          + f"  (retrying in {self._delay:.0f} s)")
        self._rearm()

    def _set_state(self, state: str) -> None:
        self.state = state
        self.sub_title = f"{self.settings.cloud} " + {
            "connecting": "○ connecting…", "connected": "● connected", "failed": "✗ not connected"}[state]
        if state == "connected":
            self._banner.display = False

    def _render_data(self) -> None:
        now = self.clock()
        self._instances_pane.show(self.instances, now)
        if self.manager is not None:
            self.tunnels.update({t.instance: t for t in self.manager.tunnels() if t.instance in self.tunnels})
        self._render_tunnels()
        if self.quota is not None:
            self._flavors_table.show(self.flavors, self.quota)
            self._render_quota()
        if self._volumes_screen is not None and self._volumes_screen.is_attached and self.quota is not None:
            self._volumes_screen.show(self.volumes, self.instances, self.quota)

    def _render_quota(self) -> None:
        if self.quota is not None:
            self._quota_bar.show(self.quota, self._flavors_table.selected)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "flavors-table":
            self._render_quota()

    # ---- keys, help, palette -------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action not in MAIN_SCREEN_ACTIONS or len(self.screen_stack) == 1

    def binding_rows(self) -> list[tuple[str, str, str, str]]:
        """(keys as displayed, description, tooltip, action) for every binding, after the keymap."""
        rows = []
        from tui.ui.widgets.tables import InstancesTable, TunnelsTable

        for binding in [*self.BINDINGS, *InstancesTable.BINDINGS, *TunnelsTable.BINDINGS]:
            assert isinstance(binding, Binding)
            keys = self._keymap.get(binding.id, binding.key) if binding.id else binding.key
            shown = ", ".join(self.get_key_display(replace(binding, key=k.strip())) for k in keys.split(","))
            action = binding.action if "." in binding.action.split("(")[0] else f"app.{binding.action}"
            rows.append((shown, binding.description, binding.tooltip, action))
        return rows

    def action_help(self) -> None:
        from tui.ui.screens.help import HelpScreen

        self.push_screen(HelpScreen([(k, d, t) for k, d, t, _ in self.binding_rows()]))

    def action_focus_pane(self, pane: str) -> None:
        target = self.query(PANES[pane])  # empty in the few ms before the panes are built
        if target:
            target.first().focus()

    # ---- instance actions ----------------------------------------------------------------------
    def _selected(self) -> Instance | None:
        if self.cloud is None:
            self.notify("Not connected to the cloud yet.", severity="warning")
            return None
        inst = self._instances_table.selected
        if inst is None:
            self.notify("Select an instance first (Instances pane, arrow keys).", severity="warning")
        return inst

    def _run(self, action: str, target: str, call: Callable[[Cloud], Instance | None],
             describe: Callable[[Instance | None], str], group: str) -> None:
        """Run one blocking cloud call in a thread worker; post ActionDone/ActionFailed."""
        cloud = self.cloud
        assert cloud is not None

        def work_() -> None:
            try:
                result = call(cloud)
            except base.CloudError as exc:
                self.post_message(msg.ActionFailed(action, target, exc))
            except Exception as exc:
                self.post_message(msg.ActionFailed(action, target, base.CloudError(f"unexpected error: {exc}")))
            else:
                self.post_message(msg.ActionDone(action, target, describe(result), result))

        self.run_worker(work_, thread=True, group=group, exit_on_error=False, name=f"{action} {target}")

    def on_action_progress(self, message: ActionProgress) -> None:
        if message.action == "launch" and self._wizard is not None and self._wizard.is_attached:
            self._wizard.progress(message.text)

    def on_action_done(self, message: ActionDone) -> None:
        self.notify(message.text, title=message.action.capitalize())
        if message.action == "launch" and message.instance and self._wizard is not None:
            if self._wizard.is_attached:
                self._wizard.finished(message.instance)
            self._wizard = None
        if message.action == "resize" and message.instance and message.instance.status == "VERIFY_RESIZE":
            self._verify_resize(message.instance)
        self.action_refresh()

    def on_action_failed(self, message: ActionFailed) -> None:
        err = message.error
        self.notify(f"{err.message}\n{err.hint}".strip(), title=f"{message.action.capitalize()} "
                    f"{message.target} failed", severity="error", timeout=10)
        if message.action == "launch" and self._wizard is not None and self._wizard.is_attached:
            self._wizard.failed(err)
        self.action_refresh()

    # launch
    def action_launch(self) -> None:
        if self.cloud is None:
            self.notify("Not connected to the cloud yet.", severity="warning")
            return
        self.notify("Reading images, flavors, key pairs and networks…", timeout=2)
        self._load_launch_choices(self.cloud)

    @work(thread=True, group="launch-choices", exclusive=True, exit_on_error=False)
    def _load_launch_choices(self, cloud: Cloud) -> None:
        from tui.core.services import public_key_files

        try:
            choices = msg.LaunchChoices(cloud.list_images(), cloud.list_flavors(), cloud.list_keypairs(),
                                    cloud.list_networks(), cloud.get_quota(),
                                    [i.name for i in cloud.list_instances()], public_key_files())
        except base.CloudError as exc:
            self.post_message(msg.ActionFailed("launch", "wizard", exc))
        else:
            self.post_message(choices)

    def on_launch_choices(self, message: LaunchChoices) -> None:
        from tui.ui.screens.wizard import LaunchWizard

        self._wizard = LaunchWizard(message, self.settings.launch)
        self.push_screen(self._wizard)

    def on_launch_wizard_launch(self, message: LaunchWizard.Launch) -> None:
        spec = message.spec

        def say(text: str) -> None:
            self.post_message(msg.ActionProgress("launch", spec.name, text))

        self._run("launch", spec.name, partial(_launch, spec, say),
                  lambda i: f"{spec.name} is {i.status if i else '?'} at {i.ip if i else '?'}.",
                  group=f"launch:{spec.name}")

    # resize
    def action_resize(self) -> None:
        inst = self._selected()
        if inst is None:
            return
        if inst.status == "VERIFY_RESIZE":
            self._verify_resize(inst)
        elif self.quota is not None:
            self._resize_flow(inst, self.quota)

    @work(group="resize-dialog", exclusive=True, exit_on_error=False)
    async def _resize_flow(self, inst: Instance, quota: Quota) -> None:
        from tui.ui.screens.confirm import Confirm
        from tui.ui.screens.instance import PickFlavor

        flavor = await self.push_screen_wait(PickFlavor(inst, self.flavors, quota))
        if flavor is None:
            return
        ok = await self.push_screen_wait(Confirm(
            f"Resize {inst.name} to {flavor.name}?",
            f"{inst.name} goes from {inst.flavor_name} to {flavor.name} ({flavor.vcpus} vCPU, {mb(flavor.ram_mb)} "
            "RAM). It restarts: running programs and Jupyter stop. "
            "You confirm or revert the new size afterwards.", "Resize", danger=True))
        if ok:
            self.notify(f"Resizing {inst.name} to {flavor.name}…")
            self._run("resize", inst.name, lambda c: c.resize(inst.id, flavor.id),
                      lambda i: f"{inst.name} is {i.status if i else '?'} with {flavor.name}.",
                      group=f"action:{inst.id}")

    @work(group="resize-dialog", exclusive=True, exit_on_error=False)
    async def _verify_resize(self, inst: Instance) -> None:
        from tui.ui.screens.instance import VerifyResize

        answer = await self.push_screen_wait(VerifyResize(inst))
        if answer == "confirm":
            self._run("confirm resize", inst.name, lambda c: c.confirm_resize(inst.id),
                      lambda i: f"{inst.name} keeps its new size ({i.flavor_name if i else '?'}).",
                      group=f"action:{inst.id}")
        elif answer == "revert":
            self._run("revert resize", inst.name, lambda c: c.revert_resize(inst.id),
                      lambda i: f"{inst.name} is back to {i.flavor_name if i else 'its old flavor'}.",
                      group=f"action:{inst.id}")

    # power
    def action_power(self) -> None:
        inst = self._selected()
        if inst is None:
            return
        if inst.status == "SHUTOFF":
            self.notify(f"Starting {inst.name}…")
            self._run("start", inst.name, lambda c: c.start(inst.id),
                      lambda i: f"{inst.name} is {i.status if i else '?'}.", group=f"action:{inst.id}")
        elif inst.status == "ACTIVE":
            self._stop_flow(inst)
        else:
            self.notify(f"{inst.name} is {inst.status}: it can be stopped when ACTIVE, started when SHUTOFF.",
                        severity="warning")

    @work(group="power-dialog", exclusive=True, exit_on_error=False)
    async def _stop_flow(self, inst: Instance) -> None:
        from tui.ui.screens.confirm import Confirm

        ok = await self.push_screen_wait(Confirm(
            f"Shut down {inst.name}?",
            f"Like shutting down a computer: running programs, Jupyter and tunnels stop; the disk is kept. "
            f"A stopped instance still holds its quota ({inst.vcpus} cores, {mb(inst.ram_mb)} RAM) — "
            "delete or resize it to free that. Press p again to start it.", "Shut down", danger=True))
        if ok:
            self.notify(f"Stopping {inst.name}…")
            self._run("stop", inst.name, lambda c: c.stop(inst.id),
                      lambda i: f"{inst.name} is {i.status if i else '?'}.", group=f"action:{inst.id}")

    def action_reboot(self) -> None:
        inst = self._selected()
        if inst is not None:
            self._reboot_flow(inst)

    @work(group="reboot-dialog", exclusive=True, exit_on_error=False)
    async def _reboot_flow(self, inst: Instance) -> None:
        from tui.ui.screens.confirm import Confirm

        ok = await self.push_screen_wait(Confirm(
            f"Reboot {inst.name}?", "Running programs, Jupyter and tunnels stop while it restarts.",
            "Reboot", danger=True))
        if ok:
            self.notify(f"Rebooting {inst.name}…")
            self._run("reboot", inst.name, lambda c: c.reboot(inst.id),
                      lambda i: f"{inst.name} is {i.status if i else '?'} again.", group=f"action:{inst.id}")

    # delete
    def action_delete(self) -> None:
        inst = self._selected()
        if inst is not None:
            attached = [v for v in self.volumes if inst.id in v.attached_to or v.id in inst.volume_ids]
            self._delete_flow(inst, attached)

    @work(group="delete-dialog", exclusive=True, exit_on_error=False)
    async def _delete_flow(self, inst: Instance, volumes: list[Volume]) -> None:
        from tui.ui.screens.confirm import DeleteInstance

        choice = await self.push_screen_wait(
            DeleteInstance(inst, volumes, self.settings.launch.delete_volume_on_termination))
        if choice is None:
            self.notify("Nothing deleted.")
            return
        kept = "" if choice or not volumes else f" Its {len(volumes)} volume(s) are kept."
        self.notify(f"Deleting {inst.name}…")
        self._run("delete", inst.name, lambda c: c.delete(inst.id, delete_volumes=choice),
                  lambda _: f"{inst.name} is deleted.{kept}", group=f"action:{inst.id}")

    # console, details
    def action_console(self) -> None:
        inst = self._selected()
        if inst is not None and self.cloud is not None:
            self._load_console(self.cloud, inst)

    @work(thread=True, group="console", exclusive=True, exit_on_error=False)
    def _load_console(self, cloud: Cloud, inst: Instance) -> None:
        try:
            self.post_message(msg.ConsoleLoaded(inst, cloud.console_log(inst.id, lines=500)))
        except base.CloudError as exc:
            self.post_message(msg.ActionFailed("console", inst.name, exc))

    def on_console_loaded(self, message: ConsoleLoaded) -> None:
        from tui.ui.screens.instance import ConsoleScreen

        self.push_screen(ConsoleScreen(message.instance, message.text))

    def action_details(self) -> None:
        inst = self._selected()
        if inst is not None and self.cloud is not None:
            self._load_details(self.cloud, inst)

    @work(thread=True, group="details", exclusive=True, exit_on_error=False)
    def _load_details(self, cloud: Cloud, inst: Instance) -> None:
        try:
            fresh = cloud.get_instance(inst.id)
            images = {i.id: i.name for i in cloud.list_images()}
            volumes = [v for v in cloud.list_volumes() if fresh.id in v.attached_to]
        except base.CloudError as exc:
            self.post_message(msg.ActionFailed("details", inst.name, exc))
        else:
            self.post_message(msg.InstanceDetails(fresh, images.get(fresh.image_id, ""), volumes))

    def on_instance_details(self, message: InstanceDetails) -> None:
        from tui.ui.screens.instance import DetailsScreen

        self.push_screen(DetailsScreen(message.instance, message.image_name, message.volumes, self.clock()))

    # volumes
    def action_volumes(self) -> None:
        if self.cloud is None or self.quota is None:
            self.notify("Not connected to the cloud yet.", severity="warning")
            return
        from tui.ui.screens.volumes import VolumesScreen

        self._volumes_screen = VolumesScreen(self._instances_table.selected, self.volumes, self.instances,
                                             self.quota)
        self.push_screen(self._volumes_screen)
        self._load_volumes(self.cloud)

    @work(thread=True, group="volumes", exclusive=True, exit_on_error=False)
    def _load_volumes(self, cloud: Cloud) -> None:
        try:
            self.post_message(msg.VolumesLoaded(cloud.list_volumes(), cloud.list_instances(), cloud.get_quota()))
        except base.CloudError as exc:
            self.post_message(msg.ActionFailed("volumes", "list", exc))

    def on_volumes_loaded(self, message: VolumesLoaded) -> None:
        self.volumes, self.quota = message.volumes, message.quota
        if self._volumes_screen is not None and self._volumes_screen.is_attached:
            self._volumes_screen.show(message.volumes, message.instances, message.quota)

    def on_volumes_screen_request(self, message: VolumesScreen.Request) -> None:
        if self.cloud is not None and self.quota is not None:
            self._volume_flow(message.kind, message.volume, message.instance, self.quota)

    @work(group="volume-dialog", exclusive=True, exit_on_error=False)
    async def _volume_flow(self, kind: str, volume: Volume | None, inst: Instance | None, quota: Quota) -> None:
        from tui.ui.screens.confirm import Confirm
        from tui.ui.screens.volumes import NewVolume

        if kind == "create":
            answer = await self.push_screen_wait(NewVolume(inst, quota))
            if answer is None:
                return
            name, size = answer

            def create(c: Cloud) -> None:
                vol = c.create_volume(name, size)
                if inst is not None:
                    c.attach_volume(inst.id, vol.id)

            where = f" and attached to {inst.name}" if inst else ""
            self._run("volume", name, create, lambda _: f"Volume {name} ({size} GB) created{where}.",
                      group=f"volume:{name}")
            return
        assert volume is not None
        label = volume_label(volume)
        if kind == "detach":
            if not volume.attached_to:
                self.notify(f"{label} is not attached.", severity="warning")
                return
            ok = await self.push_screen_wait(Confirm(
                f"Detach {label}?", "Unmount it on the VM first, or programs writing to it may lose data. "
                "The volume and its data are kept.", "Detach", danger=True))
            if ok:
                self._run("volume", label, lambda c: _none(c.detach_volume(volume.id)),
                          lambda _: f"Volume {label} detached.", group=f"volume:{volume.id}")
        elif kind == "delete":
            if volume.attached_to:
                self.notify(str(base.Conflict(f"{label} is attached", "detach it first (d)")), severity="warning")
                return
            ok = await self.push_screen_wait(Confirm(
                f"Delete volume {label}?", f"Its {volume.size_gb} GB of data are lost for good.",
                "Delete", danger=True))
            if ok:
                self._run("volume", label, lambda c: c.delete_volume(volume.id),
                          lambda _: f"Volume {label} deleted.", group=f"volume:{volume.id}")


    # ---- remote: SSH, setup, Jupyter, tunnels (tui.core.manager, loaded after the cloud connects) ---------
    async def remote(self) -> RemoteManager:
        """The remote manager, built on first use; asyncssh is imported in a thread, not on the loop."""
        async with self._manager_lock:
            if self.manager is None:
                import importlib

                await asyncio.to_thread(importlib.import_module, "tui.core.manager")
                from tui.core.manager import RemoteManager
                from tui.core.services import Services
                from tui.core.state import STATE_FILE, AppState
                from tui.ui.messages import EventBridge

                services = self.services or Services(self.settings)
                self.services = services
                state = await asyncio.to_thread(AppState.load, services.state_dir / STATE_FILE)
                self._bridge = EventBridge(self.post_message, lambda: self.message_queue_size,
                                           self._kernels_busy)
                self.manager = RemoteManager(self.settings, services, state, self._bridge, self.manager_options)
                settle_memory()  # asyncssh's modules are loaded now
            return self.manager

    async def _ssh_context(self, inst: Instance) -> RemoteContext:
        """The instance's SSH context (console log read once for host-key pinning), gathered in a thread."""
        ctx = self._contexts.get(inst.id)
        if ctx is None:
            cloud, services = self.cloud, self.services
            assert cloud is not None and services is not None
            ctx = await asyncio.to_thread(services.prepare, cloud, inst.id)
            self._contexts[inst.id] = ctx
        return ctx

    def _forget_stale_contexts(self) -> None:
        """A context is rebuilt when its instance moved, stopped or went away."""
        now = {i.id: i for i in self.instances}
        for iid, ctx in list(self._contexts.items()):
            inst = now.get(iid)
            if inst is None or (inst.ip, inst.ssh_port, inst.status) != (ctx.instance.ip, ctx.instance.ssh_port,
                                                                         ctx.instance.status):
                del self._contexts[iid]

    def _instance_name(self, instance_id: str) -> str:
        inst = next((i for i in self.instances if i.id == instance_id), None)
        return inst.name if inst is not None else instance_id[:8]

    def _remote_action(self, action: str, job: Callable[[RemoteManager, RemoteContext], Awaitable[str | None]],
                       inst: Instance | None = None) -> None:
        """Run `job` for the selected instance in an async worker; its text (or error) becomes a notification.
        One job per action and instance at a time (a second press says so instead of cancelling the first)."""
        inst = inst or self._selected()
        if inst is None:
            return
        key = (action, inst.id)
        if key in self._remote_jobs:
            self.notify(f"{action.capitalize()} is already running on {inst.name}.", severity="warning")
            return
        self._remote_jobs.add(key)
        self.run_worker(self._remote_job(action, inst, job), group=f"{action}:{inst.id}", exit_on_error=False,
                        name=f"{action} {inst.name}")

    async def _remote_job(self, action: str, inst: Instance,
                          job: Callable[[RemoteManager, RemoteContext], Awaitable[str | None]]) -> None:
        try:
            manager = await self.remote()
            from tui.core.manager import ManagerError

            try:
                ctx = await self._ssh_context(inst)
                text = await job(manager, ctx)
            except base.CloudError as exc:
                self.post_message(msg.RemoteResult(action, inst.name, f"{exc.message}\n{exc.hint}".strip(), ok=False))
            except ManagerError as exc:
                self.post_message(msg.RemoteResult(action, inst.name, str(exc), ok=False))
            except Exception as exc:  # a bug or an unexpected library error must not end silently
                self.log.error(f"{action} on {inst.name}", exc)
                self.post_message(msg.RemoteResult(action, inst.name, f"unexpected error: {exc!r}", ok=False))
            else:
                if text:
                    self.post_message(msg.RemoteResult(action, inst.name, text))
        finally:
            self._remote_jobs.discard((action, inst.id))

    def on_remote_result(self, message: RemoteResult) -> None:
        title = f"{message.action.capitalize()} · {message.target}"
        if message.ok:
            self.notify(message.text, title=title, timeout=8)
        else:
            self.notify(message.text, title=f"{title} failed", severity="error", timeout=12)

    # events from the manager
    def _kernels_busy(self, event: object) -> None:
        from tui.core.manager import BusyKernels

        assert isinstance(event, BusyKernels)
        self._busy_kernels[event.instance_id] = event.kernels

    def on_setup_events(self, message: SetupEvents) -> None:
        from tui.core.guide import OutputLines, PipelineFinished, Reconnecting, StepFinished, StepStarted

        pane = self._setup_pane
        if pane.instance != self._instance_name(message.instance_id):
            pane.begin(self._instance_name(message.instance_id), message.events[0][0] if message.events else 0.0)
        for t, event in message.events:
            if isinstance(event, OutputLines):
                pane.output(event.step, list(event.lines), t)
            elif isinstance(event, StepStarted):
                pane.step_started(event.step, event.index, event.total, event.description, t)
            elif isinstance(event, StepFinished):
                pane.step_finished(event.result, t)
            elif isinstance(event, Reconnecting):
                pane.reconnecting(event.step, event.attempt, event.error, t)
            elif isinstance(event, PipelineFinished):
                pane.finished(event.summary, event.ok, event.results, t)

    def on_jupyter_changed(self, message: JupyterChanged) -> None:
        state = message.state
        iid = state.instance_id
        before = self.jupyter.get(iid)
        self.jupyter[iid] = state
        self._render_remote(iid)
        name = self._instance_name(iid)
        if state.state == "running" and (before is None or before.state != "running"
                                         or before.local_port != state.local_port):
            where = state.public_url if state.local_port else f"port {state.remote_port} on the VM"
            tunnel = "" if state.local_port else " (no tunnel yet: press t, or o to open it in the browser)"
            self.notify(f"Jupyter answers at {where}{tunnel}\nPress o to open it (the token URL is copied too).",
                        title=f"Jupyter · {name}", timeout=10)
        elif state.state == "running" and state.error:
            self.notify(state.error, title=f"Tunnel · {name}", severity="warning")
        elif state.state == "stopped":
            self.tunnels.pop(iid, None)
            self._render_tunnels()
        elif state.state == "error":
            self.notify(state.error, title=f"Jupyter · {name}", severity="error", timeout=12)

    def on_tunnel_updated(self, message: TunnelUpdated) -> None:
        self.tunnels[message.info.instance] = message.info
        self._render_tunnels()

    def _render_tunnels(self) -> None:
        self._tunnels_pane.show(list(self.tunnels.values()), {i.id: i.name for i in self.instances}, self.clock())

    def on_ssh_state_changed(self, message: SshStateChanged) -> None:
        event = message.state
        iid, name = event.instance_id, self._instance_name(event.instance_id)
        if event.state == "lost" and iid in self._ssh_up and not self._quitting:
            self._ssh_up.discard(iid)
            self.ssh[iid] = "lost"
            self.notify(f"SSH connection to {name} lost ({event.error}). It is made again on the next action; "
                        "tunnels reconnect by themselves.", title=f"SSH · {name}", severity="warning")
        elif event.state == "failed":  # the action that needed it says why, in its own notification
            self.ssh[iid] = "failed"
        elif event.state == "connected":
            self._ssh_up.add(iid)
            self.ssh.pop(iid, None)
        self._render_remote(iid)

    def _render_remote(self, iid: str) -> None:
        state = self.jupyter.get(iid)
        cell = Text("–", style="dim")
        if state is not None:
            style = {"running": "green", "starting": "yellow", "stopping": "yellow", "stopped": "dim",
                     "error": "red"}[state.state]
            word = {"running": "running", "starting": "starting…", "stopping": "stopping…",
                    "stopped": "stopped", "error": "✗ error"}[state.state]
            cell = Text(word, style=style)
        trouble = self.ssh.get(iid)
        if trouble:
            cell.append(" ⚠ ssh lost" if trouble == "lost" else " ✗ ssh", style="bold red" if trouble == "failed"
                        else "yellow")
        self._instances_table.set_remote(iid, cell)

    def on_host_key_asked(self, message: HostKeyAsked) -> None:
        from tui.ui.screens.hostkey import HostKeyScreen

        q = message.question
        if self._quitting:
            q.refuse()
            return

        def answered(trust: bool | None) -> None:
            q.accept() if trust else q.refuse()

        self.push_screen(HostKeyScreen(self._instance_name(q.instance_id), q.host, q.port, q.key_type, q.fingerprint),
                         answered)

    def on_idle_nudged(self, message: IdleNudged) -> None:
        nudge = message.nudge
        snooze = self.get_key_display(Binding(self._keymap.get("snooze", "z"), ""))
        self.notify(f"{nudge.message}\nPress {nudge.key} on it to act, or {snooze} to snooze for a day.",
                    title=f"Idle · {self._instance_name(nudge.instance_id)}", severity="warning", timeout=20)

    def on_jupyter_log(self, message: JupyterLog) -> None:
        screen = self._log_screen
        if screen is not None and screen.is_attached and screen.instance_id == message.instance_id:
            screen.add(message.lines)

    # keys
    def action_setup(self) -> None:
        inst = self._selected()
        if inst is None:
            return
        self._setup_pane.begin(inst.name, time.monotonic())
        self._setup_pane.log_view.focus()

        async def job(m: RemoteManager, ctx: RemoteContext) -> str | None:
            result = await m.run_setup(ctx, approve_format=self._approve_format)
            if not result.ok:
                raise _manager_error(result.summary)
            return result.summary

        self._remote_action("setup", job, inst)

    async def _approve_format(self, device: str, size: str) -> bool:
        from tui.ui.screens.confirm import Confirm

        return bool(await self.push_screen_wait(Confirm(  # type: ignore[arg-type]
            f"Format {device} ({size})?", f"The attached volume {device} is empty (no filesystem). Setup can format "
            "it as ext4 and mount it for your data. Formatting erases anything on it.", "Format", danger=True)))

    def action_jupyter_start(self) -> None:
        async def job(m: RemoteManager, ctx: RemoteContext) -> str | None:
            self.post_message(msg.RemoteResult("jupyter", ctx.instance.name,
                                           "Starting Jupyter (or finding the running one)…"))
            await m.start_jupyter(ctx)
            return None  # JupyterChanged says where it answers

        self._remote_action("jupyter", job)

    def action_jupyter_stop(self) -> None:
        async def job(m: RemoteManager, ctx: RemoteContext) -> str | None:
            from tui.ui.screens.confirm import Confirm

            name = ctx.instance.name
            if not await m.stop_jupyter(ctx):
                kernels = self._busy_kernels.pop(ctx.instance.id, ())
                listing = "\n".join(f"• {k.name}" + (f" ({k.path})" if k.path else "") for k in kernels)
                ok = await self.push_screen_wait(Confirm(
                    f"Stop Jupyter on {name}? {len(kernels)} kernel(s) are busy",
                    f"These kernels are running code right now:\n{listing}\n\nStopping ends them: their work in "
                    "progress and everything in their memory is lost. Saved notebooks are kept.",
                    "Stop anyway", danger=True))
                if not ok:
                    return "Jupyter keeps running."
                await m.stop_jupyter(ctx, force=True)
            return f"Jupyter on {name} is stopped (process and screen session gone); its tunnel is closed."

        self._remote_action("stop jupyter", job)

    def action_jupyter_log(self) -> None:
        inst = self._selected()
        if inst is None:
            return
        from tui.ui.screens.jupyter_log import JupyterLogScreen

        screen = self._log_screen = JupyterLogScreen(inst.id, inst.name)

        def closed(_: object) -> None:
            self._log_screen = None
            if self.manager is not None:
                self.run_worker(self.manager.unfollow_log(inst.id), group=f"unfollow:{inst.id}",
                                exit_on_error=False)

        self.push_screen(screen, closed)

        async def job(m: RemoteManager, ctx: RemoteContext) -> str | None:
            await m.follow_log(ctx)
            return None

        self._remote_action("log", job, inst)

    def action_open_tunnel(self) -> None:
        async def job(m: RemoteManager, ctx: RemoteContext) -> str | None:
            state = await m.open_tunnel(ctx)
            return f"Tunnel 127.0.0.1:{state.local_port} → port {state.remote_port} on {ctx.instance.name} is up."

        self._remote_action("tunnel", job)

    def action_close_tunnel(self) -> None:
        iid = self._tunnels_pane.table.selected if self._built else None
        manager = self.manager
        if iid is None or manager is None:
            self.notify("No tunnel selected (Tunnels pane, arrow keys).", severity="warning")
            return

        async def close() -> None:
            await manager.close_tunnel(iid)
            self.post_message(msg.RemoteResult("tunnel", self._instance_name(iid),
                                               "Tunnel closed; Jupyter keeps running (t or o opens it again)."))
            self.tunnels.pop(iid, None)

        self.run_worker(close(), group=f"tunnel-close:{iid}", exit_on_error=False)

    def action_open_browser(self) -> None:
        async def job(m: RemoteManager, ctx: RemoteContext) -> str | None:
            import webbrowser

            url = m.token_url(ctx.instance.id)
            if url is None:
                await m.open_tunnel(ctx)
                url = m.token_url(ctx.instance.id)
            if url is None:
                raise _manager_error(f"the tunnel to {ctx.instance.name} is down; press t to open it again")
            self.copy_to_clipboard(url)
            opened = await asyncio.to_thread(webbrowser.open, url)
            where = "Opened in your browser; the" if opened else "No browser here: the"
            return (f"{mask_token(url)}\n{where} full URL with its token is on your clipboard (OSC 52). "
                    "`cades-tui status --show-token` prints it too.")

        self._remote_action("open", job)

    def action_shell(self) -> None:
        async def job(m: RemoteManager, ctx: RemoteContext) -> str | None:
            import shlex
            import subprocess

            from textual.app import SuspendNotSupported

            from tui.core.remote.connection import openssh_argv

            await m.connect(ctx)  # settles the host key (pinned or asked) before OpenSSH checks it strictly
            argv = openssh_argv(ctx.target, tty=True)
            try:
                with self.suspend():
                    code = await asyncio.to_thread(subprocess.call, argv)
            except SuspendNotSupported:
                return f"This terminal cannot hand over to a shell; run:\n{shlex.join(argv)}"
            return f"Back from the shell on {ctx.instance.name} (exit code {code})."

        self._remote_action("shell", job)

    def action_snooze(self) -> None:
        async def job(m: RemoteManager, ctx: RemoteContext) -> str | None:
            until = m.snooze(ctx.instance.id)
            return f"Idle reminders for {ctx.instance.name} are quiet until {until:%a %H:%M %Z}."

        self._remote_action("snooze", job)

    # start, idle, quit
    @work(group="reattach", exclusive=True, exit_on_error=False)
    async def _reattach(self) -> None:
        """After the first poll: find the Jupyter servers recorded on known instances and re-open their tunnels."""
        m = await self.remote()
        known = [i for i in self.instances if i.id in m.state.servers and i.status == "ACTIVE"]
        contexts = await asyncio.gather(*(self._ssh_context(i) for i in known), return_exceptions=True)
        running = await m.reattach_all([c for c in contexts if not isinstance(c, BaseException)])
        if running:
            names = ", ".join(self._instance_name(i) for i in running)
            self.post_message(msg.RemoteResult("reattach", names, f"Jupyter is running on {names}."))
        self._idle_timer = self.set_timer(self.idle_every_s, self._check_idle)

    @work(group="idle", exclusive=True, exit_on_error=False)
    async def _check_idle(self) -> None:
        """Ask each running server how long it has been idle (nudges come as events); re-armed when done."""
        from tui.core.manager import ManagerError

        m = await self.remote()
        for inst in [i for i in self.instances if i.status == "ACTIVE"]:
            state = self.jupyter.get(inst.id)
            if state is None or state.state != "running":
                continue
            try:
                await m.check_idle(await self._ssh_context(inst), now=self.clock())
            except (ManagerError, base.CloudError):
                continue  # the instance is unreachable right now: the next round tries again
        self._idle_timer = self.set_timer(self.idle_every_s, self._check_idle)

    async def _close_remote(self) -> None:
        self._quitting = True
        if self._idle_timer is not None:
            self._idle_timer.stop()
        if self.manager is not None:
            manager, self.manager = self.manager, None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(manager.aclose(), 10)

    async def action_quit(self) -> None:
        running = [self._instance_name(iid) for iid, s in self.jupyter.items() if s.state == "running"]
        await self._close_remote()
        message = None
        if running:
            message = (f"Jupyter keeps running on {', '.join(running)}; its tunnels are closed. "
                       "Start cades-tui again to reattach (tunnels re-open), or stop it with "
                       "`cades-tui jupyter stop NAME`.")
        self.exit(message=message)

    async def on_unmount(self) -> None:
        await self._close_remote()


def mask_token(url: str) -> str:
    """The URL with its token shortened to 4 characters: safe to show on screen."""
    import re

    return re.sub(r"(token=)([^&#]{4})[^&#]*", r"\1\2…", url)


def _manager_error(text: str) -> Exception:
    from tui.core.manager import ManagerError

    return ManagerError(text)


def _none(_: object) -> None:
    """Drop a result the caller does not show."""


def _launch(spec: LaunchSpec, say: Callable[[str], None], cloud: Cloud) -> Instance:
    """Launch as the CLI does (key pair, SSH rule, key remembered): see tui.core.services.launch_instance."""
    from tui.core.services import launch_instance  # imports asyncssh: only when launching

    return launch_instance(cloud, spec, say)
