"""The server actions of `OpenStackCloud`: launch, resize (confirm, revert), stop, start, reboot, delete.

Each waits, unless told not to, until the server is where the action leads (`OpenStackBase._wait`). Launch always
passes an explicit network and fetches the server again for its address; resize takes the flavor *id*.
"""

from __future__ import annotations

import contextlib
import logging
import time

from tui.core.cloud.base import CloudError, LaunchSpec, NotFound, Progress
from tui.core.cloud.openstack_base import OpenStackBase
from tui.core.cloud.openstack_errors import translate_errors
from tui.core.hints import command
from tui.core.models import Instance

# Server metadata of a launch that did not wait: the floating IP it should get once ACTIVE (Nova has no port to
# bind one to before). Whichever cades-tui process first lists it ACTIVE claims it (deleting the key: one of
# several racing processes gets 204, the others 404) and attaches the IP.
FLOATING_IP_PENDING = "cades_tui_floating_ip"

log = logging.getLogger(__name__)


class OpenStackServers(OpenStackBase):
    """What changes a server: its lifecycle, and the floating IP launch gives it."""

    def launch(self, spec: LaunchSpec, progress: Progress | None = None, wait: bool = True) -> Instance:
        say = progress or (lambda _m: None)
        c = self.conn
        with translate_errors(f"launching '{spec.name}'"):
            image = c.image.find_image(spec.image, ignore_missing=True)
            if image is None:
                raise NotFound(f"image '{spec.image}' not found", f"pick one from `{command('images')}`")
            flavor = c.compute.find_flavor(spec.flavor, ignore_missing=True)
            if flavor is None:
                raise NotFound(f"flavor '{spec.flavor}' not found", f"pick one from `{command('flavors')}`")
            network = c.network.find_network(spec.network, ignore_missing=True)
            if network is None:
                raise NotFound(f"network '{spec.network}' not found", "pick one of the project's networks")
            say(f"Creating server {spec.name} ({flavor.name}, {image.name}, {spec.volume_size_gb} GB boot volume)")
            later = spec.public_ip and not wait
            optional = {  # what is not given is left out: real Nova refuses `"metadata": null` (400)
                "metadata": {FLOATING_IP_PENDING: "when-active"} if later else None,
                "key_name": spec.key_name or None,
                "security_groups": [{"name": g} for g in spec.security_groups] or None,
            }
            server = c.compute.create_server(
                name=spec.name,
                **{k: v for k, v in optional.items() if v is not None},
                flavor_id=flavor.id,
                networks=[{"uuid": network.id}],
                block_device_mapping=[{
                    "boot_index": 0,
                    "uuid": image.id,
                    "source_type": "image",
                    "destination_type": "volume",
                    "volume_size": spec.volume_size_gb,
                    "delete_on_termination": spec.delete_volume_on_termination,
                }],
            )
        if not wait:
            if later:
                say("Its floating IP is attached once it is ACTIVE: by the next cades-tui command or app poll "
                    "that lists it (or launch with --wait)")
            return self.get_instance(server.id)
        inst = self._wait(server.id, {"ACTIVE"}, say, "to become ACTIVE")
        floating = spec.public_ip and not inst.public_ip and self._add_floating_ip(server.id, say)

        # The server returned at create time has no address yet: wait until it has the one it should have.
        def addressed(i: Instance) -> str:
            return i.public_ip if floating else i.ip if spec.public_ip else i.private_ip

        deadline = time.monotonic() + 60
        while not addressed(inst) and time.monotonic() < deadline:
            time.sleep(self._poll_s())
            inst = self.get_instance(server.id)
        where = inst.ip if spec.public_ip else f"{inst.private_ip} (private only)"
        say(f"{inst.name} is ACTIVE at {where or 'no address yet'}")
        return inst

    def attach_pending_floating_ips(self, instances: list[Instance]) -> list[Instance]:
        """The floating IPs launches that did not wait still owe: for each listed instance now ACTIVE with the
        pending mark and no public address, claim the mark and attach one. Returns the list, those re-read."""
        out = []
        for inst in instances:
            if (inst.status == "ACTIVE" and not inst.public_ip and FLOATING_IP_PENDING in inst.meta
                    and self._claim_pending_floating_ip(inst.id)):
                try:
                    self._add_floating_ip(inst.id, lambda _m: None)
                except CloudError as exc:  # say so; the mark goes back for the next listing to try again
                    log.warning("floating IP for %s not attached: %s", inst.name, exc)
                    with contextlib.suppress(Exception):
                        self.conn.compute.set_server_metadata(inst.id, **{FLOATING_IP_PENDING: "when-active"})
                    out.append(inst)
                    continue
                inst = self.get_instance(inst.id)
            out.append(inst)
        return out

    def _claim_pending_floating_ip(self, server_id: str) -> bool:
        with translate_errors("adding a floating IP"):
            response = self.conn.compute.delete(f"/servers/{server_id}/metadata/{FLOATING_IP_PENDING}",
                                                raise_exc=False)
        return bool(response.status_code < 300)

    def _add_floating_ip(self, server_id: str, say: Progress) -> bool:
        """Give the server a floating IP from the external network; False when the cloud has none (its fixed
        addresses are then what reaches it, as on clouds with routable project networks)."""
        net = self.conn.network
        with translate_errors("adding a floating IP"):
            external = next(iter(net.networks(is_router_external=True)), None)
            port = next(iter(net.ports(device_id=server_id)), None)
            if external is None or port is None:
                return False
            fip = net.create_ip(floating_network_id=external.id, port_id=port.id)
        say(f"Floating IP {fip.floating_ip_address} attached")
        return True

    def resize(self, name_or_id: str, flavor: str, wait: bool = True) -> Instance:
        server = self._server(name_or_id)
        with translate_errors(f"resizing '{server.name}'"):
            target = self.conn.compute.find_flavor(flavor, ignore_missing=True)
            if target is None:
                raise NotFound(f"flavor '{flavor}' not found", f"pick one from `{command('flavors')}`")
            self.conn.compute.resize_server(server.id, target.id)  # takes the id, not the name
        if not wait:
            return self.get_instance(server.id)
        return self._wait(server.id, {"VERIFY_RESIZE", "ACTIVE"}, None, "to finish resizing")

    def confirm_resize(self, name_or_id: str) -> Instance:
        server = self._server(name_or_id)
        with translate_errors(f"confirming the resize of '{server.name}'"):
            self.conn.compute.confirm_server_resize(server.id)
        return self._wait(server.id, {"ACTIVE"}, None, "to become ACTIVE")

    def revert_resize(self, name_or_id: str) -> Instance:
        server = self._server(name_or_id)
        with translate_errors(f"reverting the resize of '{server.name}'"):
            self.conn.compute.revert_server_resize(server.id)
        return self._wait(server.id, {"ACTIVE"}, None, "to become ACTIVE")

    def stop(self, name_or_id: str, wait: bool = True) -> Instance:
        server = self._server(name_or_id)
        with translate_errors(f"stopping '{server.name}'"):
            self.conn.compute.stop_server(server.id)
        return self._wait(server.id, {"SHUTOFF"}, None, "to stop") if wait else self.get_instance(server.id)

    def start(self, name_or_id: str, wait: bool = True) -> Instance:
        server = self._server(name_or_id)
        with translate_errors(f"starting '{server.name}'"):
            self.conn.compute.start_server(server.id)
        return self._wait(server.id, {"ACTIVE"}, None, "to start") if wait else self.get_instance(server.id)

    def reboot(self, name_or_id: str, wait: bool = True) -> Instance:
        server = self._server(name_or_id)
        with translate_errors(f"rebooting '{server.name}'"):
            self.conn.compute.reboot_server(server.id, "SOFT")
        if wait:
            time.sleep(self._poll_s())  # let the cloud leave ACTIVE first
            return self._wait(server.id, {"ACTIVE"}, None, "to come back")
        return self.get_instance(server.id)

    def delete(self, name_or_id: str, delete_volumes: bool = False, wait: bool = True) -> None:
        server = self._server(name_or_id)
        volume_ids = list(server.volume_ids)
        with translate_errors(f"deleting '{server.name}'"):
            if server.public_ip:  # release its floating IPs (launch allocated them): they would outlive it
                net = self.conn.network
                for port in net.ports(device_id=server.id):
                    for fip in net.ips(port_id=port.id):
                        net.delete_ip(fip, ignore_missing=True)
            self.conn.compute.delete_server(server.id)
            if wait or (delete_volumes and volume_ids):
                self._wait_gone(server.id)
            if delete_volumes:
                for vid in volume_ids:
                    vol = self.conn.block_storage.find_volume(vid, ignore_missing=True)
                    if vol is None:  # deleted with the server (delete_on_termination)
                        continue
                    self.conn.block_storage.wait_for_status(vol, "available", failures=["error"],
                                                            interval=self._poll_s(), wait=120)
                    self.conn.block_storage.delete_volume(vol)
                    self.conn.block_storage.wait_for_delete(vol, interval=self._poll_s(),
                                                            wait=120)  # "deleted" means gone

    def boot_image(self, server: str) -> str:
        """The id of the image the server was built from: Nova's, or its boot volume's (boot from volume)."""
        inst = self.get_instance(server)
        if inst.image_id:
            return inst.image_id
        with translate_errors(f"finding the image of '{inst.name}'"):
            for vid in inst.volume_ids:
                vol = self.conn.block_storage.get_volume(vid)
                meta = getattr(vol, "volume_image_metadata", None) or {}
                if meta.get("image_id"):
                    return str(meta["image_id"])
        raise NotFound(f"the image of '{inst.name}' is unknown", "pass the image to use")
