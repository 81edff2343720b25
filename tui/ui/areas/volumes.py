"""Storage volumes: the volumes screen, create (+ attach to the selected instance), detach and delete."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.ui.areas.base import Owner, base, msg, work
from tui.ui.widgets.format import volume_label

if TYPE_CHECKING:
    from tui.core.api import Engine
    from tui.core.models import Instance, Quota, Volume
    from tui.ui.app import CadesApp
    from tui.ui.screens.volumes import VolumesScreen


class Volumes(Owner):
    def __init__(self, app: CadesApp) -> None:
        super().__init__(app)
        self.screen: VolumesScreen | None = None  # the volumes screen, once opened

    def show(self) -> None:
        if self.engine is None or self.fleet.quota is None:
            self.notify("Not connected to the cloud yet.", severity="warning")
            return
        from tui.ui.screens.volumes import VolumesScreen

        self.screen = VolumesScreen(self.app.instances_pane.table.selected, list(self.fleet.volumes),
                                   self.fleet.instances(), self.fleet.quota)
        self.app.push_screen(self.screen)
        self._load_volumes(self.engine)

    @work(thread=True, group="volumes", exclusive=True, exit_on_error=False, name="read volumes")
    def _load_volumes(self, cloud: Engine) -> None:
        try:
            self.post_message(msg.VolumesLoaded(cloud.list_volumes(), cloud.list_instances(), cloud.get_quota()))
        except base.CloudError as exc:
            self.post_message(msg.ActionFailed("volumes", "list", exc))

    def on_volumes_loaded(self, message: msg.VolumesLoaded) -> None:
        if self.screen is not None and self.screen.is_attached:
            self.screen.show(message.volumes, message.instances, message.quota)

    def render(self) -> None:
        """After a poll: the open volumes screen shows the fresh list."""
        screen, quota = self.screen, self.fleet.quota
        if screen is not None and screen.is_attached and quota is not None:
            screen.show(list(self.fleet.volumes), self.fleet.instances(), quota)

    def on_volumes_screen_request(self, message: VolumesScreen.Request) -> None:
        if self.engine is not None and self.fleet.quota is not None:
            self._volume_flow(message.kind, message.volume, message.instance, self.fleet.quota)

    @work(group="volume-dialog", exclusive=True, exit_on_error=False, name="volume")
    async def _volume_flow(self, kind: str, volume: Volume | None, inst: Instance | None, quota: Quota) -> None:
        if kind == "create":
            await self._create_volume(inst, quota)
        elif volume is not None and kind == "detach":
            await self._detach_volume(volume)
        elif volume is not None and kind == "delete":
            await self._delete_volume(volume)

    async def _create_volume(self, inst: Instance | None, quota: Quota) -> None:
        from tui.ui.screens.volumes import NewVolume

        answer = await self.app.push_screen_wait(NewVolume(inst, quota))
        if answer is None:
            return
        name, size = answer

        def create(c: Engine) -> None:
            vol = c.create_volume(name, size)
            if inst is not None:
                c.attach_volume(inst.id, vol.id)

        where = f" and attached to {inst.name}" if inst else ""
        self.run_cloud("volume", name, create, lambda _: f"Volume {name} ({size} GB) created{where}.",
                       group=f"volume:{name}")

    async def _detach_volume(self, volume: Volume) -> None:
        from tui.ui.screens.confirm import Confirm

        label = volume_label(volume)
        if not volume.attached_to:
            self.notify(f"{label} is not attached.", severity="warning")
            return
        if await self.app.push_screen_wait(Confirm(
                f"Detach {label}?", "Unmount it on the VM first, or programs writing to it may lose data. "
                "The volume and its data are kept.", "Detach", danger=True)):
            self.run_cloud("volume", label, lambda c: _none(c.detach_volume(volume.id)),
                           lambda _: f"Volume {label} detached.", group=f"volume:{volume.id}")

    async def _delete_volume(self, volume: Volume) -> None:
        from tui.ui.screens.confirm import Confirm

        label = volume_label(volume)
        if volume.attached_to:
            self.notify(str(base.Conflict(f"{label} is attached", "detach it first (d)")), severity="warning")
            return
        if await self.app.push_screen_wait(Confirm(
                f"Delete volume {label}?", f"Its {volume.size_gb} GB of data are lost for good.",
                "Delete", danger=True)):
            self.run_cloud("volume", label, lambda c: c.delete_volume(volume.id),
                           lambda _: f"Volume {label} deleted.", group=f"volume:{volume.id}")


def _none(_: object) -> None:
    """Drop a result the caller does not show."""
