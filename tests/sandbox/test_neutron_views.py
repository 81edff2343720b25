"""The sandbox's Neutron stores security group rules as real Neutron 29 does (checked against it by
tests/realcloud): a tcp/udp rule over the whole port range 1-65535 is kept without a range (None, None)."""

from __future__ import annotations

from typing import Any

from tests.sandbox.conftest import connect
from tui.core.cloud.clouds_yaml import open_cloud
from tui.sandbox import Sandbox


def test_whole_port_range_is_stored_without_a_range(sandbox: Sandbox) -> None:
    conn: Any = connect(sandbox)
    try:
        group = conn.network.create_security_group(name="whole-range")
        rule = conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
            port_range_min=1, port_range_max=65535, remote_group_id=group.id)
        assert (rule.port_range_min, rule.port_range_max) == (None, None)
        listed = [r for r in conn.network.security_group_rules(security_group_id=group.id)
                  if r.direction == "ingress"]
        assert [(r.port_range_min, r.port_range_max) for r in listed] == [(None, None)]
        ssh = conn.network.create_security_group_rule(  # a narrower range inside it is a rule of its own
            security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
            port_range_min=22, port_range_max=22, remote_group_id=group.id)
        assert (ssh.port_range_min, ssh.port_range_max) == (22, 22)
    finally:
        conn.close()


def test_cluster_group_is_idempotent_over_the_canonical_range(sandbox: Sandbox) -> None:
    """The app's cluster group, made twice: the same group and no 409 for a rule Neutron stored as (None, None)."""
    cloud: Any = open_cloud("sandbox", str(sandbox.clouds_yaml))
    gid = cloud.create_cluster_security_group("cades-dask-idem")
    assert cloud.create_cluster_security_group("cades-dask-idem") == gid
    rules = [r for r in cloud.conn.network.security_group_rules(security_group_id=gid) if r.direction == "ingress"]
    assert sorted(((r.port_range_min or 0), (r.port_range_max or 0)) for r in rules) == [(0, 0), (22, 22)]
    assert cloud.delete_security_group(gid) is True
