"""Actions on instances in the cloud: launch (wizard), resize (+ confirm/revert), stop/start, reboot, delete,
console log and details. Destructive ones ask first (a dialog inside an async worker), then run in a thread."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from tui.core.units import plural
from tui.ui.areas.base import Owner, msg, work
from tui.ui.widgets.format import mb

if TYPE_CHECKING:
    from tui.core.api import Engine
    from tui.core.cluster.deletion import Deletion
    from tui.core.models import Instance, Quota
    from tui.ui.app import CadesApp
    from tui.ui.screens.wizard import LaunchWizard
    from tui.ui.shelving import Shelver

log = logging.getLogger("tui.ui.areas.instances")


class Instances(Owner):
    def __init__(self, app: CadesApp) -> None:
        super().__init__(app)
        self.wizard: LaunchWizard | None = None  # the launch wizard, from its choices until its launch ends

    # -- launch -------------------------------------------------------------------------------------------------
    def launch(self) -> None:
        if self.engine is None:
            self.notify("Not connected to the cloud yet.", severity="warning")
            return
        self.notify("Reading images, flavors, key pairs and networks…", timeout=2)
        self._load_launch_choices(self.engine)

    @work(thread=True, group="launch-choices", exclusive=True, exit_on_error=False, name="read launch choices")
    def _load_launch_choices(self, cloud: Engine) -> None:
        from tui.core.cloud.base import CloudError
        from tui.core.paths import public_key_files

        try:
            choices = msg.LaunchChoices(cloud.list_images(), cloud.list_flavors(), cloud.list_keypairs(),
                                        cloud.list_networks(), cloud.get_quota(),
                                        [i.name for i in cloud.list_instances()], public_key_files())
        except CloudError as exc:
            self.post_message(msg.ActionFailed("launch", "wizard", exc))
        else:
            self.post_message(choices)

    def on_launch_choices(self, message: msg.LaunchChoices) -> None:
        from tui.ui.screens.wizard import LaunchWizard

        self.wizard = LaunchWizard(message, self.settings.launch)
        self.app.push_screen(self.wizard)

    def on_launch_wizard_launch(self, message: LaunchWizard.Launch) -> None:
        spec, engine = message.spec, self.engine
        assert engine is not None

        def say(text: str) -> None:
            self.post_message(msg.ActionProgress("launch", spec.name, text))

        self.run_cloud("launch", spec.name, lambda _cloud: engine.launch(spec, say),
                       lambda i: f"{spec.name} is {i.status if i else '?'} at {i.ip if i else '?'}.",
                       group=f"launch:{spec.name}")

    def on_action_progress(self, message: msg.ActionProgress) -> None:
        if message.action == "launch" and self.wizard is not None and self.wizard.is_attached:
            self.wizard.progress(message.text)

    def on_action_done(self, message: msg.ActionDone) -> None:
        self.notify(message.text, title=message.action.capitalize())
        if message.action == "launch" and message.instance and self.wizard is not None:
            if self.wizard.is_attached:
                self.wizard.finished(message.instance)
            self.wizard = None
        if message.action == "resize" and message.instance and message.instance.status == "VERIFY_RESIZE":
            self._verify_resize(message.instance)
        self.app.polling.refresh()

    def on_action_failed(self, message: msg.ActionFailed) -> None:
        err = message.error
        self.notify(f"{err.message}\n{err.hint}".strip(), title=f"{message.action.capitalize()} "
                    f"{message.target} failed", severity="error", timeout=10)
        if message.action == "launch" and self.wizard is not None and self.wizard.is_attached:
            self.wizard.failed(err)
        self.app.polling.refresh()

    def filter(self) -> None:
        """`/`: the Instances table's filter line (the table observes the polled instances; it hides rows only)."""
        if self.app.built:
            self.app.instances_pane.table.open_filter()

    # -- resize -------------------------------------------------------------------------------------------------
    def resize(self) -> None:
        inst = self.selected_instance()
        if inst is None:
            return
        if inst.status == "VERIFY_RESIZE":
            self._verify_resize(inst)
        elif self.fleet.quota is not None:
            self._resize_flow(inst, self.fleet.quota)

    @work(group="resize-dialog", exclusive=True, exit_on_error=False, name="resize")
    async def _resize_flow(self, inst: Instance, quota: Quota) -> None:
        from tui.ui.screens.confirm import Confirm
        from tui.ui.screens.instance import PickFlavor

        flavor = await self.app.push_screen_wait(PickFlavor(inst, list(self.fleet.flavors), quota))
        if flavor is None:
            return
        ok = await self.app.push_screen_wait(Confirm(
            f"Resize {inst.name} to {flavor.name}?",
            f"{inst.name} goes from {inst.flavor_name} to {flavor.name} ({flavor.vcpus} vCPU, {mb(flavor.ram_mb)} "
            "RAM). It restarts: running programs and Jupyter stop. "
            "You confirm or revert the new size afterwards.", "Resize", danger=True))
        if ok:
            self.notify(f"Resizing {inst.name} to {flavor.name}…")
            self.run_cloud("resize", inst.name, lambda c: c.resize(inst.id, flavor.id),
                           lambda i: f"{inst.name} is {i.status if i else '?'} with {flavor.name}.",
                           group=f"action:{inst.id}")

    @work(group="resize-dialog", exclusive=True, exit_on_error=False, name="confirm or revert a resize")
    async def _verify_resize(self, inst: Instance) -> None:
        from tui.ui.screens.instance import VerifyResize

        answer = await self.app.push_screen_wait(VerifyResize(inst))
        if answer == "confirm":
            self.run_cloud("confirm resize", inst.name, lambda c: c.confirm_resize(inst.id),
                           lambda i: f"{inst.name} keeps its new size ({i.flavor_name if i else '?'}).",
                           group=f"action:{inst.id}")
        elif answer == "revert":
            self.run_cloud("revert resize", inst.name, lambda c: c.revert_resize(inst.id),
                           lambda i: f"{inst.name} is back to {i.flavor_name if i else 'its old flavor'}.",
                           group=f"action:{inst.id}")

    # -- power ----------------------------------------------------------------------------------------------------
    def power(self) -> None:
        inst = self.selected_instance()
        if inst is None:
            return
        if inst.status == "SHUTOFF":
            self.notify(f"Starting {inst.name}…")
            self.run_cloud("start", inst.name, lambda c: c.start(inst.id),
                           lambda i: f"{inst.name} is {i.status if i else '?'}.", group=f"action:{inst.id}")
        elif inst.status == "ACTIVE":
            self._confirm_then("stop", inst, f"Shut down {inst.name}?",
                               f"Like shutting down a computer: running programs, Jupyter and tunnels stop; the "
                               f"disk is kept. A stopped instance still holds its quota ({inst.vcpus} cores, "
                               f"{mb(inst.ram_mb)} RAM) — delete or resize it to free that. Press p again to "
                               "start it.", "Shut down", lambda c: c.stop(inst.id))
        else:
            self.notify(f"{inst.name} is {inst.status}: it can be stopped when ACTIVE, started when SHUTOFF.",
                        severity="warning")

    def reboot(self) -> None:
        inst = self.selected_instance()
        if inst is not None:
            self._confirm_then("reboot", inst, f"Reboot {inst.name}?",
                               "Running programs, Jupyter and tunnels stop while it restarts.", "Reboot",
                               lambda c: c.reboot(inst.id))

    @work(group="power-dialog", exclusive=True, exit_on_error=False, name="stop or reboot")
    async def _confirm_then(self, action: str, inst: Instance, title: str, body: str, button: str,
                            call: Callable[[Engine], Instance | None]) -> None:
        from tui.ui.screens.confirm import Confirm

        if await self.app.push_screen_wait(Confirm(title, body, button, danger=True)):
            self.notify(f"{'Stopping' if action == 'stop' else 'Rebooting'} {inst.name}…")
            again = " again" if action == "reboot" else ""
            self.run_cloud(action, inst.name, call,
                           lambda i: f"{inst.name} is {i.status if i else '?'}{again}.",
                           group=f"action:{inst.id}")

    # -- delete ---------------------------------------------------------------------------------------------------
    # -- shelve / unshelve (h): the owner object tui.ui.shelving.Shelver, made on first use ------------------------
    _shelver: Shelver | None = None

    @property
    def shelver(self) -> Shelver:
        if self._shelver is None:
            from tui.ui.shelving import Shelver

            self._shelver = Shelver(self.selected_instance, self.app.jobs.run, self.app.push_screen_wait, self.notify,
                                    lambda: self.app.call_later(self.app.run_action, "refresh"))
        return self._shelver

    def shelve(self) -> None:
        self.shelver.toggle()

    def delete(self) -> None:
        inst = self.selected_instance()
        if inst is None:
            return
        self.notify(f"Checking what deleting {inst.name} takes with it…", timeout=2)
        self.app.jobs.run("delete", self._delete_job, inst)

    async def _delete_job(self, engine: Engine, inst: Instance) -> str | None:
        """The core's one delete (the CLI's too): the facts first (Jupyter, the Dask cluster it heads, volumes),
        shown in the dialog; the cluster goes with the head."""
        from tui.core.api import ManagerError
        from tui.ui.screens.confirm import DeleteInstance

        declined: list[bool] = []
        chosen: list[bool] = []

        async def ask(plan: Deletion) -> bool | None:
            default = self.settings.launch.delete_volume_on_termination
            choice = await self.app.push_screen_wait(DeleteInstance(plan, default))
            if choice is None:
                declined.append(True)
                return None
            self.notify(f"Deleting {inst.name}" + (" and its Dask cluster" if plan.takes_cluster else "") + "…")
            for gone in (*plan.workers, inst):
                self.fleet.mark_deleting(gone.id)
            self.app.fleet_changed()
            chosen.append(bool(choice))
            return bool(choice)

        try:
            plan = await engine.delete_instance(inst, ask)
        except ManagerError:
            if declined:
                return "Nothing deleted."
            raise
        finally:
            self.app.polling.refresh()
        kept = f" Its {plural(len(plan.volumes), 'volume')} kept." if plan.volumes and not chosen[0] else ""
        cluster = (f" Its Dask cluster went with it ({', '.join(w.name for w in plan.workers) or 'no workers'}"
                   + (f", {plan.group}" if plan.group else "") + ")." if plan.takes_cluster else "")
        self.app.clusters.check_leftovers()
        return f"{inst.name} is deleted.{kept}{cluster}"

    # -- console, details -----------------------------------------------------------------------------------------
    def console(self) -> None:
        inst = self.selected_instance()
        if inst is not None and self.engine is not None:
            self._load_console(self.engine, inst)

    @work(thread=True, group="console", exclusive=True, exit_on_error=False, name="read the console log")
    def _load_console(self, cloud: Engine, inst: Instance) -> None:
        from tui.core.cloud.base import CloudError

        try:
            self.post_message(msg.ConsoleLoaded(inst, cloud.console_log(inst.id, lines=500)))
        except CloudError as exc:
            self.post_message(msg.ActionFailed("console", inst.name, exc))

    def on_console_loaded(self, message: msg.ConsoleLoaded) -> None:
        from tui.ui.screens.instance import ConsoleScreen

        self.app.push_screen(ConsoleScreen(message.instance, message.text))

    def details(self) -> None:
        inst = self.selected_instance()
        if inst is not None and self.engine is not None:
            self._load_details(self.engine, inst)

    @work(thread=True, group="details", exclusive=True, exit_on_error=False, name="read instance details")
    def _load_details(self, cloud: Engine, inst: Instance) -> None:
        from tui.core.cloud.base import CloudError

        try:
            fresh = cloud.get_instance(inst.id)
            images = {i.id: i.name for i in cloud.list_images()}
            volumes = [v for v in cloud.list_volumes() if fresh.id in v.attached_to]
        except CloudError as exc:
            self.post_message(msg.ActionFailed("details", inst.name, exc))
        else:
            self.post_message(msg.InstanceDetails(fresh, images.get(fresh.image_id, ""), volumes))

    def on_instance_details(self, message: msg.InstanceDetails) -> None:
        from tui.core.cost import describe
        from tui.ui.screens.instance import DetailsScreen

        report = self.engine.cost(self.fleet.instances()) if self.engine is not None else None
        self.app.push_screen(DetailsScreen(message.instance, message.image_name, message.volumes, self.app.clock(),
                                           self.fleet.get(message.instance.id),
                                           describe(report, message.instance.id) if report else ""))
