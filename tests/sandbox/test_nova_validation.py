"""The sandbox's Nova refuses what real Nova 34 refuses (found by tests/realcloud): a server create with
`"metadata": null` is a 400 there, so the app must leave the field out — and the sandbox must refuse it too, or the
app's own tests cannot see the difference."""

from __future__ import annotations

from typing import Any

from tests.sandbox.conftest import connect
from tui.sandbox import Sandbox


def test_server_create_with_null_metadata_is_refused_as_nova_does(sandbox: Sandbox) -> None:
    conn: Any = connect(sandbox)
    try:
        flavor = next(f for f in conn.compute.flavors() if f.name == "m1.tiny")
        image = next(iter(conn.image.images()))
        network = next(iter(conn.network.networks()))
        body = {"server": {"name": "nullmeta", "flavorRef": flavor.id, "imageRef": image.id,
                           "networks": [{"uuid": network.id}], "metadata": None}}
        answer = conn.compute.post("/servers", json=body, microversion="2.37")
        assert answer.status_code == 400, answer.text
        assert "metadata" in answer.json()["badRequest"]["message"]
        assert "nullmeta" not in {s.name for s in conn.compute.servers()}
    finally:
        conn.close()


def test_the_apps_launch_without_wait_leaves_unset_fields_out(sandbox: Sandbox) -> None:
    """`launch NAME` without a floating IP owed, without --wait: no `metadata: null` reaches Nova (real Nova's 400
    broke every launch of the app's cloud layer against it)."""
    from tui.core.cloud.base import LaunchSpec
    from tui.core.cloud.openstack_cloud import OpenStackCloud

    cloud = OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=str(sandbox.clouds_yaml))
    network = cloud.list_networks()[0].name
    spec = LaunchSpec(name="plain", image="Ubuntu 24.04", flavor="m1.tiny", volume_size_gb=16, key_name="",
                      network=network, public_ip=False)
    inst = cloud.launch(spec, wait=False)
    assert inst.name == "plain"
