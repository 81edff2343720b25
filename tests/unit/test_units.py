"""One unit style everywhere (issue 11): RAM humanized in binary units by one helper, used up quotas said so."""

from __future__ import annotations

import pytest

from tui.cli.common import ram as cli_ram
from tui.core.models import Flavor, Quota
from tui.core.units import left, ram
from tui.ui.widgets.format import mb


@pytest.mark.parametrize(("mib", "said"), [(0, "0 B"), (512, "512 MiB"), (1024, "1 GiB"), (1536, "1.5 GiB"),
                                           (8192, "8 GiB"), (16384, "16 GiB"), (2047, "2 GiB"), (-2048, "-2 GiB")])
def test_ram_is_said_in_gib_or_mib_and_zero_as_0_b(mib: int, said: str) -> None:
    assert ram(mib) == said
    assert mb(mib) == said and cli_ram(mib) == said  # the app's panes and the CLI say it the same way


def test_a_used_up_quota_says_none_left() -> None:
    assert left(0, "0 B") == "none left" and left(3) == "3 left" and left(2048, ram(2048)) == "2 GiB left"
    quota = Quota(8192, 8192, 16, 16, 10, 2)
    reasons = Quota.misfit(quota, Flavor("f", "m1.medium", 2, 8192, 40))
    assert reasons == ["needs 8 GiB RAM, none left", "needs 2 cores, none left"]
    assert Quota(8192, 6144, 16, 3, 10, 2).misfit(Flavor("f", "m1.medium", 2, 8192, 40)) == [
        "needs 8 GiB RAM, 2 GiB left"]


def test_novas_quota_refusals_in_our_units() -> None:
    """Nova counts RAM in MiB ("Requested 28672, but already used 6144 of 8192 ram"): said in GiB, with what is left."""
    from tui.core.cloud.openstack_errors import quota_message

    assert quota_message("Quota exceeded for ram: Requested 28672, but already used 6144 of 8192 ram") == (
        "over the quota — RAM: this needs 28 GiB more, 6 GiB of 8 GiB in use (2 GiB left)")
    assert quota_message("Quota exceeded for cores, ram: Requested 15, 12288, but already used 2, 6144 of 16, 8192 "
                         "cores, ram") == ("over the quota — cores: this needs 15 more, 2 of 16 in use (14 left); "
                                           "RAM: this needs 12 GiB more, 6 GiB of 8 GiB in use (2 GiB left)")
    assert quota_message("Quota exceeded for instances: Requested 1, but already used 10 of 10 instances") == (
        "over the quota — instances: this needs 1 more, 10 of 10 in use (none left)")
    assert quota_message("VolumeSizeExceedsAvailableQuota: 5000 GB") == "VolumeSizeExceedsAvailableQuota: 5000 GB"
