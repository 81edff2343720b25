"""The cloud facade under the sandbox's fault knobs: every failure is one CloudError with the cloud's words."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tui.cloud.base import CloudError, QuotaExceeded, RateLimited, Unreachable
from tui.cloud.openstack_cloud import OpenStackCloud


@pytest.fixture
def cloud(sandbox) -> Iterator[OpenStackCloud]:  # type: ignore[no-untyped-def]
    yield OpenStackCloud.from_config("sandbox", sandbox.clouds_yaml, api_timeout=1.0)
    sandbox.faults.reset()


def test_slow_api_times_out_cleanly(cloud: OpenStackCloud, sandbox) -> None:  # type: ignore[no-untyped-def]
    sandbox.faults.latency_s = 3.0
    with pytest.raises(Unreachable, match="did not answer in time"):
        cloud.list_flavors()
    sandbox.faults.latency_s = 0.0
    assert cloud.list_flavors()  # and it works again


def test_server_errors_and_rate_limits(cloud: OpenStackCloud, sandbox) -> None:  # type: ignore[no-untyped-def]
    sandbox.faults.error_rate = 1.0
    with pytest.raises(CloudError, match=r"internal error \(5\d\d\)"):
        cloud.list_instances()
    sandbox.faults.error_rate = 0.0
    sandbox.faults.rate_limit_rate = 1.0
    with pytest.raises(RateLimited, match="429"):
        cloud.get_quota()
    sandbox.faults.rate_limit_rate = 0.0
    assert cloud.get_quota().cores_limit == 16


def test_quota_exceeded_carries_novas_message(cloud: OpenStackCloud, sandbox) -> None:  # type: ignore[no-untyped-def]
    from tui.cloud.base import LaunchSpec

    sandbox.faults.set_quota(instances=0)
    net = next(n for n in cloud.list_networks() if not n.external)
    image = next(i for i in cloud.list_images() if "Ubuntu" in i.name)
    spec = LaunchSpec(name="over", image=image.id, flavor="m1.tiny", key_name="", network=net.id)
    with pytest.raises(QuotaExceeded, match="Quota exceeded for instances"):
        cloud.launch(spec)
    assert all(i.name != "over" for i in cloud.list_instances())


def test_instance_going_to_error_is_reported(cloud: OpenStackCloud, sandbox) -> None:  # type: ignore[no-untyped-def]
    from tui.cloud.base import LaunchSpec

    sandbox.faults.fail_next_create = True
    net = next(n for n in cloud.list_networks() if not n.external)
    image = next(i for i in cloud.list_images() if "Ubuntu" in i.name)
    spec = LaunchSpec(name="doomed", image=image.id, flavor="m1.tiny", key_name="", network=net.id)
    with pytest.raises(CloudError, match="went to ERROR"):
        cloud.launch(spec)
    assert cloud.get_instance("doomed").status == "ERROR"
    cloud.delete("doomed", delete_volumes=True)
