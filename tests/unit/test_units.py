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
