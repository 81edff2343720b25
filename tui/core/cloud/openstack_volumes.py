"""The volumes of `OpenStackCloud`: create, attach, detach and delete, each waiting until Cinder is done."""

from __future__ import annotations

from tui.core.cloud.base import Conflict
from tui.core.cloud.openstack_base import OpenStackBase
from tui.core.cloud.openstack_convert import to_volume
from tui.core.cloud.openstack_errors import translate_errors
from tui.core.hints import command
from tui.core.models import Volume


class OpenStackVolumes(OpenStackBase):
    """Cinder volumes, and attaching them to servers."""

    def create_volume(self, name: str, size_gb: int) -> Volume:
        with translate_errors(f"creating volume '{name}'"):
            vol = self.conn.block_storage.create_volume(name=name, size=size_gb)
            vol = self.conn.block_storage.wait_for_status(vol, "available", failures=["error"],
                                                          interval=self._poll_s(), wait=300)
        return to_volume(vol)

    def attach_volume(self, server: str, volume: str) -> Volume:
        srv = self._server(server)
        vol = self._volume(volume)
        with translate_errors(f"attaching '{vol.name}' to '{srv.name}'"):
            self.conn.compute.create_volume_attachment(srv.id, volume=vol)
            vol = self.conn.block_storage.wait_for_status(vol, "in-use", failures=["error"],
                                                          interval=self._poll_s(), wait=300)
        return to_volume(vol)

    def detach_volume(self, volume: str) -> Volume:
        vol = self._volume(volume)
        servers = [a.get("server_id") for a in (vol.attachments or []) if a.get("server_id")]
        if not servers:
            raise Conflict(f"volume '{vol.name}' is not attached", "nothing to detach")
        with translate_errors(f"detaching '{vol.name}'"):
            for sid in servers:
                self.conn.compute.delete_volume_attachment(sid, vol, ignore_missing=True)
            vol = self.conn.block_storage.wait_for_status(vol, "available", failures=["error"],
                                                          interval=self._poll_s(), wait=300)
        return to_volume(vol)

    def delete_volume(self, volume: str) -> None:
        vol = self._volume(volume)
        if vol.attachments:
            raise Conflict(f"volume '{vol.name}' is attached",
                           f"detach it first (`{command('volume', 'detach', vol.name)}`)")
        with translate_errors(f"deleting volume '{vol.name}'"):
            self.conn.block_storage.delete_volume(vol)
            self.conn.block_storage.wait_for_delete(vol, interval=self._poll_s(), wait=120)  # Cinder deletes later
