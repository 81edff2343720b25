"""Who may reach the servers of `OpenStackCloud`: key pairs (ssh's) and security groups (the network's)."""

from __future__ import annotations

from tui.core.cloud.base import NotFound
from tui.core.cloud.openstack_base import OpenStackBase
from tui.core.cloud.openstack_convert import to_keypair
from tui.core.cloud.openstack_errors import translate_errors
from tui.core.models import Keypair


class OpenStackAccess(OpenStackBase):
    """Key pairs, and the security groups that let ssh and a cluster's members in."""

    def import_keypair(self, name: str, public_key: str) -> Keypair:
        with translate_errors(f"importing key pair '{name}'"):
            k = self.conn.compute.create_keypair(name=name, public_key=public_key.strip())
        return to_keypair(k, public_key)

    def delete_keypair(self, name: str) -> None:
        with translate_errors(f"deleting key pair '{name}'"):
            self.conn.compute.delete_keypair(name, ignore_missing=False)

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
            # Neutron stores a rule over the whole range 1-65535 without a range (None, None): read it back as such.
            have = {(r.direction, r.ether_type, r.protocol, r.port_range_min or 1, r.port_range_max or 65535,
                     r.remote_group_id)
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

    def list_security_groups(self) -> list[str]:
        """The names of this project's security groups (a cluster's `cades-dask-HEAD` among them; an admin's token
        would list every project's, hence the filter)."""
        with translate_errors("listing security groups"):
            try:
                project = self.conn.current_project_id
            except Exception:  # an auth type without a project (noauth): the groups Neutron shows
                project = None
            query = {"project_id": project} if project else {}
            return sorted(str(g.name) for g in self.conn.network.security_groups(**query))

    def delete_security_group(self, name_or_id: str) -> bool:
        """Delete a security group; False when there is none. Conflict (409) while an instance still uses it."""
        with translate_errors(f"deleting security group '{name_or_id}'"):
            group = self.conn.network.find_security_group(name_or_id, ignore_missing=True)
            if group is None:
                return False
            self.conn.network.delete_security_group(group)
        return True
