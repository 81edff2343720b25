"""Launch planning: the guide's defaults and every refusal happen before any API call."""

from __future__ import annotations

import pytest

from tui.core.cloud.base import InvalidInput, NotFound, QuotaExceeded
from tui.core.cloud.launch import check_name, plan_launch
from tui.core.models import Flavor, Image, Network, Quota

FLAVORS = [
    Flavor("1", "m1.small", 1, 2048, 0), Flavor("2", "m1.medium", 2, 4096, 0), Flavor("3", "m1.xlarge", 8, 16384, 0),
    Flavor("4", "c1.small", 2, 1024, 0), Flavor("5", "c1.xlarge", 16, 8192, 0),
]
IMAGES = [
    Image("u22", "Ubuntu 22.04", "active", min_disk_gb=3, os_distro="ubuntu", os_version="22.04"),
    Image("u24", "Ubuntu 24.04", "active", min_disk_gb=4, os_distro="ubuntu", os_version="24.04"),
    Image("big", "Fat image", "active", min_disk_gb=20),
    Image("q", "Ubuntu 26.04 (queued)", "queued", os_distro="ubuntu", os_version="26.04"),
]
NETS = [Network("ext", "public", external=True), Network("n1", "project-net")]
QUOTA = Quota(ram_mb_limit=8192, ram_mb_used=0, cores_limit=16, cores_used=0, instances_limit=10, instances_used=0,
              gigabytes_limit=40, gigabytes_used=0)


def plan(name: str = "analytics", **kw: object):  # type: ignore[no-untyped-def]
    return plan_launch(name, flavors=FLAVORS, images=IMAGES, networks=NETS, quota=kw.pop("quota", QUOTA),
                       key_name="k", **kw)  # type: ignore[arg-type]


def test_defaults_follow_the_guide() -> None:
    p = plan()
    assert p.image.name == "Ubuntu 24.04"  # newest *active* Ubuntu
    assert p.flavor.name == "m1.small"  # smallest m1 that fits
    assert p.network.name == "project-net"  # never the external one, never "auto"
    assert p.spec.volume_size_gb == 16 and p.spec.delete_volume_on_termination is False
    assert p.spec.flavor == "1" and p.spec.image == "u24" and p.spec.network == "n1"
    assert any("newest Ubuntu" in n for n in p.notes)


@pytest.mark.parametrize("bad", ["my vm", "vm;rm -rf ~", "$(reboot)", "-x", "", "a" * 64, "vm`id`"])
def test_bad_names_refused(bad: str) -> None:
    with pytest.raises(InvalidInput, match="not allowed"):
        check_name(bad)


def test_flavor_that_does_not_fit_is_refused_with_numbers() -> None:
    with pytest.raises(QuotaExceeded, match=r"m1.xlarge does not fit.*needs 16 GiB RAM, 8 GiB left"):
        plan(flavor="m1.xlarge")


def test_volume_quota_counts() -> None:
    with pytest.raises(QuotaExceeded, match="needs 50 GB of volume, 40 GB left"):
        plan(flavor="m1.small", volume_size_gb=50)


def test_volume_smaller_than_image() -> None:
    with pytest.raises(InvalidInput, match="smaller than image Fat image needs"):
        plan(image="Fat image", volume_size_gb=16)
    with pytest.raises(InvalidInput, match="too small"):
        plan(volume_size_gb=2)


def test_unknown_names() -> None:
    with pytest.raises(NotFound, match="flavor 'm9.huge' not found"):
        plan(flavor="m9.huge")
    with pytest.raises(NotFound, match="image 'Windows' not found"):
        plan(image="Windows")
    with pytest.raises(NotFound, match="network 'nope' not found"):
        plan(network="nope")


def test_full_quota_no_flavor_fits() -> None:
    full = Quota(ram_mb_limit=8192, ram_mb_used=8192, cores_limit=16, cores_used=16, instances_limit=10,
                 instances_used=1)
    with pytest.raises(QuotaExceeded, match="no flavor fits"):
        plan(quota=full)


def test_launch_spec_defaults_give_a_public_address_in_the_default_group() -> None:
    from tui.core.cloud.base import LaunchSpec

    spec = LaunchSpec(name="vm", image="i", flavor="f", key_name="k", network="n")
    assert spec.public_ip is True and spec.security_groups == ("default",)
    worker = LaunchSpec(name="w", image="i", flavor="f", key_name="k", network="n", public_ip=False,
                        security_groups=("cluster",))
    assert (worker.public_ip, worker.security_groups) == (False, ("cluster",))


def test_cloud_error_text_carries_no_html() -> None:
    """Nova's 404 body reads 'The resource could not be found.<br /><br />': the app shows plain text."""
    from tui.core.cloud.openstack_errors import _no_html

    assert _no_html("The resource could not be found.<br /><br />\n") == "The resource could not be found."
    assert _no_html("quota &lt; 8 GB<br/>") == "quota < 8 GB"
    assert _no_html("plain text ") == "plain text"
