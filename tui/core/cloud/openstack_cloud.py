"""`Cloud` implemented with openstacksdk.

openstacksdk is imported lazily (it costs ~0.6 s): building an `OpenStackCloud` is the first moment it loads,
and the app does that in a thread worker after its first frame. Every method blocks.

The pitfalls of DESIGN.md §4 are handled deliberately here:
- launch always passes an explicit network (openstacksdk would send ``networks: "auto"``);
- the boot volume's lifetime is a choice (`LaunchSpec.delete_volume_on_termination`), reported to the user;
- after create the server is fetched again for its address;
- resize takes the flavor *id*.
"""

from __future__ import annotations

import contextlib
import email.utils
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from tui.core.cloud import authcache, rest
from tui.core.cloud.base import (
    AuthError,
    CloudError,
    Conflict,
    InvalidInput,
    LaunchSpec,
    NotFound,
    Progress,
    QuotaExceeded,
    RateLimited,
    Unreachable,
)
from tui.core.models import Address, Flavor, Image, Instance, Keypair, Network, Quota, Volume

POLL_S = 1.0
API_TIMEOUT_S = 30.0  # per HTTP request, unless clouds.yaml sets api_timeout
MICROVERSION = "2.79"  # flavor details embedded in servers (2.47), stable since Train
WAIT_S = 900.0  # a slow cloud can take minutes to build a boot-from-volume server


def no_such_cloud(cloud: str, loader: Any, exc: Exception, files: list[str] | None) -> InvalidInput:
    """Bad input, refused before asking any cloud (exit code 2): the clouds.yaml has no entry `cloud` — said with
    the file and the entries it has — or there is no clouds.yaml, or the entry itself is broken (openstacksdk's
    reason). (A file that is not valid YAML is named by `tui.core.cloud.clouds_yaml.open_cloud`.)"""
    where = getattr(loader, "config_filename", None)
    if not where:
        looked = ", ".join(files) if files else \
            "./clouds.yaml, ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml"
        return InvalidInput(f"cloud '{cloud}': no clouds.yaml found (looked in {looked})",
                            "download it from Horizon (API Access) to one of those, set OS_CLIENT_CONFIG_FILE, "
                            "or try the sandbox cloud: cades-tui --demo")
    names = sorted(set(loader.get_cloud_names()))
    if cloud not in names:
        have = f"its entries: {', '.join(names)}" if names else "it has no entries"
        return InvalidInput(f"cloud '{cloud}' is not in {where} ({have})",
                            "name one with --cloud NAME or `cloud:` in the profile")
    return InvalidInput(f"cloud '{cloud}' in {where}: {exc}", "fix that entry of clouds.yaml")


class OpenStackCloud:
    """The real cloud, through openstacksdk."""

    def __init__(self, conn: Any, name: str, clouds_yaml: str | None = None, token: str | None = None) -> None:
        self.conn = conn
        self.name = name
        self.clouds_yaml = clouds_yaml
        self._cached_token = token  # the token in the cache file (tui.core.cloud.authcache)
        self._endpoints_noted = False
        self.answered: datetime | None = None  # the cloud's clock: the HTTP Date of its last answer
        self.watch = rest.ServerWatch(to_instance, lambda: self.answered)

    @classmethod
    def from_config(cls, cloud: str, clouds_yaml: str | Path | None = None,
                    api_timeout: float = API_TIMEOUT_S) -> OpenStackCloud:
        """Connect to the clouds.yaml entry `cloud` (from `clouds_yaml` when given, else the usual lookup)."""
        with translate_errors(f"connecting to cloud '{cloud}'"):
            import openstack.config
            import openstack.connection

            files = [str(Path(clouds_yaml).expanduser())] if clouds_yaml else None
            loader = openstack.config.OpenStackConfig(config_files=files)
            try:
                config = loader.get_one(cloud=cloud)
                if not config.config.get("api_timeout"):  # a stuck API call must end (clouds.yaml may set it)
                    config.config["api_timeout"] = api_timeout
            except openstack.exceptions.ConfigException as exc:
                raise no_such_cloud(cloud, loader, exc, files) from None
            conn = openstack.connection.Connection(config=config, app_name="cades-tui")
            profile = str(Path(clouds_yaml).expanduser()) if clouds_yaml else None
            restored = authcache.restore(conn, cloud, profile)  # a token still good: no keystone round trip
            conn.authorize()  # fail now, with a clear message, rather than on the first poll
            authcache.remember(conn, cloud, profile, restored)
        return cls(conn, cloud, profile, restored or _token(conn))

    # ---------------------------------------------------------------- reads
    def list_instances(self) -> list[Instance]:
        """All servers, read as plain JSON and paged by Nova's `next` links.

        openstacksdk's Server resources cost ~7 ms each to build (7 s for 1,000 servers); the JSON is the same
        data, so the hot path (polling, `cades-tui list`) skips them."""
        with translate_errors("listing instances"):
            servers = rest.servers(self._json)
        self._note_cache()
        return [to_instance(s) for s in servers]

    def watch_instances(self, full: bool = False) -> tuple[list[Instance], bool]:
        """Every instance, and whether any changed since the last call — between full listings only the servers
        Nova says changed (`changes-since`) are read (`rest.ServerWatch`)."""
        with translate_errors("listing instances"):
            found = self.watch.instances(self._json, full)
        self._note_cache()
        return found

    def get_instance(self, name_or_id: str) -> Instance:
        server_id = self._server_id(name_or_id)
        with translate_errors(f"reading instance '{name_or_id}'"):
            return to_instance(self._get(f"/servers/{server_id}")["server"])

    def list_flavors(self) -> list[Flavor]:
        with translate_errors("listing flavors"):
            flavors = [to_flavor(f) for f in self.conn.compute.flavors(details=True)]
        return sorted(flavors, key=lambda f: (f.family.value, f.vcpus, f.ram_mb, f.name))

    def list_images(self) -> list[Image]:
        with translate_errors("listing images"):
            images = [to_image(i) for i in self.conn.image.images()]
        return sorted(images, key=lambda i: i.name)

    def list_networks(self) -> list[Network]:
        with translate_errors("listing networks"):
            return [
                Network(
                    id=n.id,
                    name=n.name or n.id,
                    external=bool(n.is_router_external),
                    subnets=tuple(n.subnet_ids or ()),
                )
                for n in self.conn.network.networks()
            ]

    def list_keypairs(self) -> list[Keypair]:
        with translate_errors("listing key pairs"):
            return [
                Keypair(name=k.name, fingerprint=k.fingerprint or "", type=k.type or "ssh",
                        public_key=k.public_key or "")
                for k in self.conn.compute.keypairs()
            ]

    def list_volumes(self) -> list[Volume]:
        with translate_errors("listing volumes"):
            return rest.volumes(self._json)

    def get_quota(self) -> Quota:
        """Nova's and Cinder's absolute limits, as JSON (an old Cinder without /limits: counted from the volumes)."""
        with translate_errors("reading the quota"):
            return rest.quota(self._json)

    def console_log(self, name_or_id: str, lines: int | None = None) -> str:
        server = self._server(name_or_id)
        with translate_errors(f"reading the console log of '{server.name}'"):
            out = self.conn.compute.get_server_console_output(server.id, length=lines)
        return str(out.get("output", ""))

    # -------------------------------------------------------------- actions
    def launch(self, spec: LaunchSpec, progress: Progress | None = None, wait: bool = True) -> Instance:
        say = progress or (lambda _m: None)
        c = self.conn
        with translate_errors(f"launching '{spec.name}'"):
            image = c.image.find_image(spec.image, ignore_missing=True)
            if image is None:
                raise NotFound(f"image '{spec.image}' not found", "pick one from `cades-tui images`")
            flavor = c.compute.find_flavor(spec.flavor, ignore_missing=True)
            if flavor is None:
                raise NotFound(f"flavor '{spec.flavor}' not found", "pick one from `cades-tui flavors`")
            network = c.network.find_network(spec.network, ignore_missing=True)
            if network is None:
                raise NotFound(f"network '{spec.network}' not found", "pick one of the project's networks")
            say(f"Creating server {spec.name} ({flavor.name}, {image.name}, {spec.volume_size_gb} GB boot volume)")
            server = c.compute.create_server(
                name=spec.name,
                flavor_id=flavor.id,
                networks=[{"uuid": network.id}],
                key_name=spec.key_name or None,
                security_groups=[{"name": g} for g in spec.security_groups] or None,
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
            return self.get_instance(server.id)
        inst = self._wait(server.id, {"ACTIVE"}, say, "to become ACTIVE")
        floating = spec.public_ip and not inst.public_ip and self._add_floating_ip(server.id, say)

        # The server returned at create time has no address yet: wait until it has the one it should have.
        def addressed(i: Instance) -> str:
            return i.public_ip if floating else i.ip if spec.public_ip else i.private_ip

        deadline = time.monotonic() + 60
        while not addressed(inst) and time.monotonic() < deadline:
            time.sleep(POLL_S)
            inst = self.get_instance(server.id)
        where = inst.ip if spec.public_ip else f"{inst.private_ip} (private only)"
        say(f"{inst.name} is ACTIVE at {where or 'no address yet'}")
        return inst

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
                raise NotFound(f"flavor '{flavor}' not found", "pick one from `cades-tui flavors`")
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
            time.sleep(POLL_S)  # let the cloud leave ACTIVE first
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
                                                            interval=POLL_S, wait=120)
                    self.conn.block_storage.delete_volume(vol)
                    self.conn.block_storage.wait_for_delete(vol, interval=POLL_S, wait=120)  # "deleted" means gone

    def import_keypair(self, name: str, public_key: str) -> Keypair:
        with translate_errors(f"importing key pair '{name}'"):
            k = self.conn.compute.create_keypair(name=name, public_key=public_key.strip())
        return Keypair(name=k.name, fingerprint=k.fingerprint or "", type=k.type or "ssh",
                       public_key=k.public_key or public_key)

    def delete_keypair(self, name: str) -> None:
        with translate_errors(f"deleting key pair '{name}'"):
            self.conn.compute.delete_keypair(name, ignore_missing=False)

    def create_volume(self, name: str, size_gb: int) -> Volume:
        with translate_errors(f"creating volume '{name}'"):
            vol = self.conn.block_storage.create_volume(name=name, size=size_gb)
            vol = self.conn.block_storage.wait_for_status(vol, "available", failures=["error"],
                                                          interval=POLL_S, wait=300)
        return to_volume(vol)

    def attach_volume(self, server: str, volume: str) -> Volume:
        srv = self._server(server)
        vol = self._volume(volume)
        with translate_errors(f"attaching '{vol.name}' to '{srv.name}'"):
            self.conn.compute.create_volume_attachment(srv.id, volume=vol)
            vol = self.conn.block_storage.wait_for_status(vol, "in-use", failures=["error"],
                                                          interval=POLL_S, wait=300)
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
                                                          interval=POLL_S, wait=300)
        return to_volume(vol)

    def delete_volume(self, volume: str) -> None:
        vol = self._volume(volume)
        if vol.attachments:
            raise Conflict(f"volume '{vol.name}' is attached", "detach it first (`cades-tui volume detach`)")
        with translate_errors(f"deleting volume '{vol.name}'"):
            self.conn.block_storage.delete_volume(vol)
            self.conn.block_storage.wait_for_delete(vol, interval=POLL_S, wait=120)  # Cinder deletes later

    def ensure_ssh_rule(self, security_group: str = "default") -> bool:
        """Allow SSH (tcp/22) in `security_group` if no rule does; True when a rule was added."""
        with translate_errors(f"checking security group '{security_group}'"):
            group = self.conn.network.find_security_group(security_group, ignore_missing=True)
            if group is None:
                raise NotFound(f"security group '{security_group}' not found", "")
            for rule in self.conn.network.security_group_rules(security_group_id=group.id):
                lo, hi = rule.port_range_min, rule.port_range_max
                if (rule.direction == "ingress" and rule.protocol in ("tcp", None)
                        and (lo is None or lo <= 22 <= (hi or lo))):
                    return False
            self.conn.network.create_security_group_rule(
                security_group_id=group.id, direction="ingress", protocol="tcp", ethertype="IPv4",
                port_range_min=22, port_range_max=22, remote_ip_prefix="0.0.0.0/0",
            )
        return True

    def create_cluster_security_group(self, name: str) -> str:
        """A group admitting tcp from its own members only (every port, and ssh named on its own); its id.
        Idempotent: an existing group of that name is completed with the missing rules."""
        net = self.conn.network
        with translate_errors(f"creating security group '{name}'"):
            group = net.find_security_group(name, ignore_missing=True)
            if group is None:
                group = net.create_security_group(
                    name=name, description="cades-tui cluster: members reach each other over tcp, nobody else")
            have = {(r.direction, r.ether_type, r.protocol, r.port_range_min, r.port_range_max, r.remote_group_id)
                    for r in net.security_group_rules(security_group_id=group.id)}
            for lo, hi in ((1, 65535), (22, 22)):
                if ("ingress", "IPv4", "tcp", lo, hi, group.id) not in have:
                    net.create_security_group_rule(
                        security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
                        port_range_min=lo, port_range_max=hi, remote_group_id=group.id,
                    )
        return str(group.id)

    def add_security_group(self, server: str, group: str) -> None:
        """Put the server into security group `group` (name or id); nothing when it is in it already."""
        sid = self._server_id(server)
        with translate_errors(f"adding '{server}' to security group '{group}'"):
            sg = self.conn.network.find_security_group(group, ignore_missing=False)
            srv = self.conn.compute.get_server(sid)
            if sg.name in {g.get("name") for g in (srv.security_groups or [])}:
                return
            srv.add_security_group(self.conn.compute, sg.name)

    def remove_security_group(self, server: str, group: str) -> None:
        """Take the server out of security group `group`; nothing when it is not in it."""
        sid = self._server_id(server)
        with translate_errors(f"removing '{server}' from security group '{group}'"):
            sg = self.conn.network.find_security_group(group, ignore_missing=True)
            srv = self.conn.compute.get_server(sid)
            if sg is None or sg.name not in {g.get("name") for g in (srv.security_groups or [])}:
                return
            srv.remove_security_group(self.conn.compute, sg.name)

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

    def delete_security_group(self, name_or_id: str) -> bool:
        """Delete a security group; False when there is none. Conflict (409) while an instance still uses it."""
        with translate_errors(f"deleting security group '{name_or_id}'"):
            group = self.conn.network.find_security_group(name_or_id, ignore_missing=True)
            if group is None:
                return False
            self.conn.network.delete_security_group(group)
        return True

    # -------------------------------------------------------------- helpers
    def _json(self, service: str, path: str) -> dict[str, Any]:
        """GET `path` of a service ("compute" at MICROVERSION, "block_storage"); an HTTP error as a CloudError."""
        proxy = getattr(self.conn, service)
        response = proxy.get(path, microversion=MICROVERSION) if service == "compute" else proxy.get(path)
        if response.status_code >= 400:
            raise classify(_http_error(response), f"reading {path.split('?')[0]}")
        with contextlib.suppress(TypeError, ValueError):
            self.answered = email.utils.parsedate_to_datetime(response.headers.get("Date"))
        body: dict[str, Any] = response.json()
        return body

    def _note_cache(self) -> None:
        """After a read: keep the token cache current (keystoneauth may have re-authenticated, say after a 401
        on a revoked token) and record the endpoints the app's first listing goes straight to."""
        token = _token(self.conn)
        if token != self._cached_token:
            authcache.remember(self.conn, self.name, self.clouds_yaml, self._cached_token)
            self._cached_token, self._endpoints_noted = token, False
        if not self._endpoints_noted:
            self._endpoints_noted = True
            with contextlib.suppress(Exception):  # a cloud without a block-storage service: the cache does without
                for service in ("compute", "block_storage"):
                    authcache.note_endpoint(self.name, self.clouds_yaml, service,
                                            getattr(self.conn, service).get_endpoint())

    def _get(self, url: str) -> dict[str, Any]:
        response = self.conn.compute.get(url, microversion=MICROVERSION)
        if response.status_code >= 400:
            from openstack import exceptions

            exceptions.raise_from_response(response)
        body: dict[str, Any] = response.json()
        return body

    def _server_id(self, name_or_id: str) -> str:
        with translate_errors(f"finding instance '{name_or_id}'"):
            server = self.conn.compute.find_server(name_or_id, ignore_missing=True)
            if server is None:
                raise NotFound(f"instance '{name_or_id}' not found", "see `cades-tui list`")
            return str(server.id)

    def _server(self, name_or_id: str) -> Instance:
        return self.get_instance(name_or_id)

    def _volume(self, name_or_id: str) -> Any:
        with translate_errors(f"finding volume '{name_or_id}'"):
            vol = self.conn.block_storage.find_volume(name_or_id, ignore_missing=True)
            if vol is None:
                raise NotFound(f"volume '{name_or_id}' not found", "see `cades-tui volume list`")
            return self.conn.block_storage.get_volume(vol.id)

    def _wait_gone(self, server_id: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if self.conn.compute.find_server(server_id, ignore_missing=True) is None:
                return
            time.sleep(POLL_S)
        raise CloudError(f"instance {server_id} was not deleted in {int(WAIT_S)} s", "check it in `cades-tui list`")

    def _wait(self, server_id: str, targets: set[str], say: Progress | None, what: str) -> Instance:
        deadline = time.monotonic() + WAIT_S
        last = ""
        while True:
            inst = self.get_instance(server_id)
            if say and inst.status != last:
                say(f"{inst.name}: {inst.status}" + (f" ({inst.task_state})" if inst.task_state else ""))
            last = inst.status
            if inst.status in targets:
                return inst
            if inst.status == "ERROR":
                raise CloudError(f"{inst.name} went to ERROR: {inst.fault or 'no reason given'}",
                                 "delete it and try again, or contact your cloud's support")
            if time.monotonic() > deadline:
                raise CloudError(f"{inst.name} did not get {what} in {int(WAIT_S)} s (still {inst.status})",
                                 "check the cloud's status page; the action may still finish")
            time.sleep(POLL_S)


# ------------------------------------------------------------------ conversions
def _token(conn: Any) -> str | None:
    auth_ref = getattr(getattr(conn.session, "auth", None), "auth_ref", None)
    return getattr(auth_ref, "auth_token", None)


def _http_error(response: Any) -> BaseException:
    from openstack import exceptions

    try:
        exceptions.raise_from_response(response)
    except exceptions.HttpException as exc:
        return exc
    return exceptions.HttpException(response=response)


def to_instance(s: dict[str, Any]) -> Instance:
    """A server as Nova's JSON (microversion >= 2.47) -> Instance."""
    flavor = s.get("flavor") or {}
    addresses = tuple(
        Address(network=net, addr=a.get("addr", ""), kind=a.get("OS-EXT-IPS:type", "fixed"),
                version=rest.as_int(a.get("version"), 4))
        for net, addrs in (s.get("addresses") or {}).items()
        for a in addrs
    )
    image = s.get("image") or {}
    fault = s.get("fault") or {}
    return Instance(
        id=s["id"],
        name=s.get("name") or s["id"],
        status=(s.get("status") or "UNKNOWN").upper(),
        flavor_name=flavor.get("original_name") or flavor.get("name") or flavor.get("id") or "",
        flavor_id=flavor.get("id") or "",
        vcpus=rest.as_int(flavor.get("vcpus")),
        ram_mb=rest.as_int(flavor.get("ram")),
        image_id=image.get("id", "") if isinstance(image, dict) else "",
        key_name=s.get("key_name") or "",
        addresses=addresses,
        created_at=rest.as_time(s.get("created")),
        launched_at=rest.as_time(s.get("OS-SRV-USG:launched_at")),
        task_state=s.get("OS-EXT-STS:task_state") or "",
        power_state=rest.as_int(s.get("OS-EXT-STS:power_state")),
        fault=fault.get("message", "") if isinstance(fault, dict) else str(fault),
        volume_ids=tuple(v["id"] for v in (s.get("os-extended-volumes:volumes_attached") or []) if v.get("id")),
        metadata=tuple(sorted((str(k), str(v)) for k, v in (s.get("metadata") or {}).items())),
    )


def to_flavor(f: Any) -> Flavor:
    return Flavor(id=f.id, name=f.name, vcpus=rest.as_int(f.vcpus), ram_mb=rest.as_int(f.ram),
                  disk_gb=rest.as_int(f.disk),
                  is_public=bool(f.is_public if f.is_public is not None else True))


def to_image(i: Any) -> Image:
    return Image(id=i.id, name=i.name or i.id, status=i.status or "", min_disk_gb=rest.as_int(i.min_disk),
                 size_bytes=rest.as_int(i.size), os_distro=getattr(i, "os_distro", None) or "",
                 os_version=getattr(i, "os_version", None) or "", created_at=rest.as_time(i.created_at))


def to_volume(v: Any) -> Volume:
    attachments = v.attachments or []
    return Volume(
        id=v.id, name=v.name or v.id, size_gb=rest.as_int(v.size), status=v.status or "",
        attached_to=tuple(a.get("server_id", "") for a in attachments if a.get("server_id")),
        device=next((a.get("device", "") for a in attachments if a.get("device")), ""),
        bootable=str(v.is_bootable).lower() == "true", created_at=rest.as_time(v.created_at),
    )


# ------------------------------------------------------------------ errors
def _status(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
    return int(code) if isinstance(code, int) else None


@contextlib.contextmanager
def translate_errors(doing: str) -> Iterator[None]:
    """Turn openstacksdk/keystoneauth exceptions into the CloudError family, naming what we were doing."""
    try:
        yield
    except CloudError:
        raise
    except Exception as exc:
        raise classify(exc, doing) from exc


def _root(exc: BaseException) -> BaseException:
    """openstacksdk wraps keystoneauth errors (e.g. a 401 in SDKException): look through the chain."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        if _status(seen) is not None or type(seen).__module__.startswith("keystoneauth1"):
            return seen
        seen = seen.__cause__ or seen.__context__
    return exc


def classify(exc: BaseException, doing: str) -> CloudError:
    from keystoneauth1 import exceptions as ka

    exc = _root(exc)
    name = type(exc).__name__
    if isinstance(exc, ka.Unauthorized) or _status(exc) == 401:
        return AuthError(f"{doing}: the cloud refused the credentials (401)",
                         "check the clouds.yaml entry; application credentials may have expired")
    if isinstance(exc, ka.connection.ConnectTimeout | ka.connection.UnknownConnectionError) or "timed out" in str(exc):
        return Unreachable(f"{doing}: the cloud API did not answer in time ({name})",
                           "retry in a moment; for a slow cloud set api_timeout in clouds.yaml")
    if isinstance(exc, ka.connection.ConnectFailure | ka.connection.SSLError):
        return Unreachable(f"{doing}: cannot reach the cloud API ({name})",
                           "check the network/VPN and auth_url in clouds.yaml")
    if isinstance(exc, ka.DiscoveryFailure | ka.EndpointNotFound):
        return Unreachable(f"{doing}: {exc}", "check auth_url and the region in clouds.yaml")
    status = _status(exc)
    message = _cloud_message(exc)
    if (status == 403 and "quota" in message.lower()) or status == 413:
        return QuotaExceeded(f"{doing}: {message}",
                             "free resources (stop/delete/resize down) or ask your cloud for more quota", status)
    if status == 404 or name in ("ResourceNotFound", "NotFoundException"):
        return NotFound(f"{doing}: {message}", "", status)
    if status == 409:
        return Conflict(f"{doing}: {message}", "wait until the instance settles and try again", status)
    if status == 429:
        return RateLimited(f"{doing}: the cloud is rate-limiting requests (429)", "wait a moment and retry", status)
    if status and status >= 500:
        return CloudError(f"{doing}: the cloud had an internal error ({status}): {message}",
                          "retry in a moment; if it persists, contact the cloud's support", status)
    if isinstance(exc, ka.ClientException):
        return Unreachable(f"{doing}: {name}: {exc}", "check the network and clouds.yaml")
    return CloudError(f"{doing}: {message}", "", status)


def _cloud_message(exc: BaseException) -> str:
    """The cloud's own message, without openstacksdk's wrapping where we can."""
    details = getattr(exc, "details", None)
    if isinstance(details, str) and details.strip():
        return _no_html(details)
    text = _no_html(str(exc))
    return text.splitlines()[0] if text else type(exc).__name__


def _no_html(text: str) -> str:
    """Cloud messages carry HTML at times (`The resource could not be found.<br /><br />`): plain text only."""
    if "<" not in text:
        return text.strip()
    import html

    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())
