"""The images of `OpenStackCloud` that the project makes: Nova's createImage (`compute.create_server_image`), one
image read, delete, Glance's image quota (`/v2/info/usage`), and the Cinder snapshots a volume-backed server's
image maps."""

from __future__ import annotations

from tui.core.cloud.base import NotFound
from tui.core.cloud.openstack_base import OpenStackBase
from tui.core.cloud.openstack_convert import to_image, to_snapshot
from tui.core.cloud.openstack_errors import translate_errors
from tui.core.hints import command
from tui.core.models import Image, VolumeSnapshot


class OpenStackImages(OpenStackBase):
    """Images made from servers, and the volume snapshots behind them."""

    def create_image(self, server: str, name: str) -> Image:
        """Nova's createImage of the server (its image id from the body at 2.45+, the Location header before, as
        openstacksdk reads it); the image as Glance has it now (`queued`, or `active` at once for a volume-backed
        server)."""
        srv = self._server(server)
        with translate_errors(f"creating image '{name}' of '{srv.name}'"):
            image = self.conn.compute.create_server_image(srv.id, name, wait=False)
            return to_image(image, self.conn.current_project_id or "")

    def get_image(self, name_or_id: str) -> Image:
        with translate_errors(f"reading image '{name_or_id}'"):
            image = self.conn.image.find_image(name_or_id, ignore_missing=True)
            if image is None:
                raise NotFound(f"image '{name_or_id}' not found", f"see `{command('image', 'list')}`")
            return to_image(self.conn.image.get_image(image.id), self.conn.current_project_id or "")

    def delete_image(self, image_id: str) -> None:
        with translate_errors(f"deleting image '{image_id}'"):
            self.conn.image.delete_image(image_id, ignore_missing=False)

    def image_quota(self) -> tuple[int, int] | None:
        """(limit, used) of the project's image count (Glance's `image_count_total`, -1 unlimited); None when
        the cloud does not say (Glance without unified limits answers 404 here)."""
        with translate_errors("reading the image quota"):
            response = self.conn.image.get("/info/usage", raise_exc=False)
        if response.status_code >= 400:
            return None
        try:
            count = response.json()["usage"]["image_count_total"]
            return int(count["limit"]), int(count["usage"])
        except (ValueError, KeyError, TypeError):
            return None

    def list_snapshots(self) -> list[VolumeSnapshot]:
        with translate_errors("listing volume snapshots"):
            return [to_snapshot(s) for s in self.conn.block_storage.snapshots(details=True)]

    def delete_snapshot(self, snapshot_id: str, wait: bool = True) -> None:
        with translate_errors(f"deleting volume snapshot '{snapshot_id}'"):
            snap = self.conn.block_storage.find_snapshot(snapshot_id, ignore_missing=True)
            if snap is None:
                return
            self.conn.block_storage.delete_snapshot(snap)
            if wait:
                self.conn.block_storage.wait_for_delete(snap, interval=self._poll_s(), wait=300)
