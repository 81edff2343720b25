"""Neutron security groups and rules: records, validation as Neutron does it, in-use checks.

What is modelled, and what is not: groups, rules and the groups of each server's port are real records with
Neutron's shapes and errors (a rule's `remote_group_id` must name a group; a group in use by a port cannot be
deleted: 409 SecurityGroupInUse; deleting a group deletes the rules of other groups that name it as remote).
Nothing is enforced: every sandbox server is a process on this machine's loopback, so any of them (and the
user's laptop) can reach any other's private 127.0.0.N address whatever the rules say.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tui.sandbox.neutron import base_record, neutron_error
from tui.sandbox.state import Record

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox

PROTOCOLS_WITH_PORTS = ("tcp", "udp", "6", "17")


def rule_record(sb: Sandbox, sg_id: str, **fields: Any) -> Record:
    rule = base_record(
        sb,
        security_group_id=sg_id,
        direction="ingress",
        ethertype="IPv4",
        protocol=None,
        port_range_min=None,
        port_range_max=None,
        remote_ip_prefix=None,
        remote_group_id=None,
        remote_address_group_id=None,
        revision_number=0,
    )
    rule.update(fields)
    return rule


def seed_default(sb: Sandbox) -> None:
    """The project's `default` group: egress anywhere, ingress from its own members (under the lock)."""
    sg = base_record(sb, name="default", description="Default security group", stateful=True, shared=False)
    sb.state.table("security_groups")[sg["id"]] = sg
    for ethertype in ("IPv4", "IPv6"):
        for direction in ("egress", "ingress"):
            rule = rule_record(sb, sg["id"], direction=direction, ethertype=ethertype)
            if direction == "ingress":
                rule["remote_group_id"] = sg["id"]
            sb.state.table("security_group_rules")[rule["id"]] = rule


def resolve(sb: Sandbox, wanted: list[str]) -> list[str]:
    """Group ids for names or ids (Nova's `security_groups` on create); LookupError(the first one not found)."""
    groups = sb.state.table("security_groups")
    out: list[str] = []
    for ref in wanted:
        if ref in groups:
            gid = ref
        else:
            found = [g["id"] for g in groups.values() if g["name"] == ref]
            if not found:
                raise LookupError(ref)
            gid = found[0]
        if gid not in out:
            out.append(gid)
    return out


def create_group(sb: Sandbox, body: dict[str, Any]) -> Record:
    rec = base_record(
        sb, name=body.get("name", ""), description=body.get("description", ""), stateful=True, shared=False
    )
    sb.state.table("security_groups")[rec["id"]] = rec
    for ethertype in ("IPv4", "IPv6"):
        r = rule_record(sb, rec["id"], direction="egress", ethertype=ethertype)
        sb.state.table("security_group_rules")[r["id"]] = r
    return rec


def _port(value: Any) -> int | None:
    if value is None:
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = -1
    if not 0 <= port <= 65535:
        raise neutron_error(400, "SecurityGroupInvalidPortValue", f"Invalid value for port {value}.")
    return port


def _rule_fields(sb: Sandbox, body: dict[str, Any]) -> dict[str, Any]:
    if body.get("direction") not in ("ingress", "egress"):
        raise neutron_error(
            400,
            "InvalidInput",
            f"Invalid input for direction. Reason: {body.get('direction')!r} is not in ['ingress', 'egress'].",
        )
    fields = {
        k: body.get(k)
        for k in ("direction", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix", "remote_group_id")
    }
    fields["ethertype"] = body.get("ethertype") or "IPv4"
    if fields["protocol"] is not None:
        fields["protocol"] = str(fields["protocol"]).lower()
    lo, hi = _port(fields["port_range_min"]), _port(fields["port_range_max"])
    fields["port_range_min"], fields["port_range_max"] = lo, hi
    if (lo is not None or hi is not None) and fields["protocol"] is None:
        raise neutron_error(
            400, "SecurityGroupProtocolRequiredWithPorts", "Must also specify protocol if port range is given."
        )
    if fields["protocol"] in PROTOCOLS_WITH_PORTS and lo is not None and hi is not None and lo > hi:
        raise neutron_error(
            400, "SecurityGroupInvalidPortRange", "For TCP/UDP protocols, port_range_min must be <= port_range_max"
        )
    if fields["remote_ip_prefix"] and fields["remote_group_id"]:
        raise neutron_error(
            400,
            "SecurityGroupMultipleRemoteEntites",
            "Only remote_ip_prefix or remote_group_id or remote_address_group_id may be provided.",
        )
    if fields["protocol"] in PROTOCOLS_WITH_PORTS and (lo, hi) == (1, 65535):
        fields["port_range_min"] = fields["port_range_max"] = None  # Neutron keeps the whole range as no range
    remote = fields["remote_group_id"]
    if remote and remote not in sb.state.table("security_groups"):
        raise neutron_error(404, "SecurityGroupNotFound", f"Security group {remote} does not exist")
    return fields


def create_rule(sb: Sandbox, body: dict[str, Any]) -> Record:
    sg_id = body.get("security_group_id", "")
    if sg_id not in sb.state.table("security_groups"):
        raise neutron_error(404, "SecurityGroupNotFound", f"Security group {sg_id} does not exist")
    fields = _rule_fields(sb, body)
    for other in sb.state.table("security_group_rules").values():
        if other["security_group_id"] == sg_id and all(other.get(k) == v for k, v in fields.items()):
            raise neutron_error(
                409, "SecurityGroupRuleExists", f"Security group rule already exists. Rule id is {other['id']}."
            )
    rule = rule_record(sb, sg_id, description=body.get("description", ""), **fields)
    sb.state.table("security_group_rules")[rule["id"]] = rule
    return rule


def delete_group(sb: Sandbox, rec: Record) -> None:
    """Delete a group and its rules, and the rules naming it as remote; Neutron's 409s first (under the lock)."""
    if rec["name"] == "default":
        raise neutron_error(
            409, "SecurityGroupCannotRemoveDefault", "Insufficient rights for removing default security group."
        )
    if any(rec["id"] in p.get("security_groups", []) for p in sb.state.table("ports").values()):
        raise neutron_error(409, "SecurityGroupInUse", f"Security Group {rec['id']} in use.")
    rules = sb.state.table("security_group_rules")
    for rid in [r["id"] for r in rules.values() if rec["id"] in (r["security_group_id"], r["remote_group_id"])]:
        del rules[rid]
    del sb.state.table("security_groups")[rec["id"]]
