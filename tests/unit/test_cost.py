"""The cost model's arithmetic (tui.core.cost): rates by flavor and state, the burn rate, shares, savings, and the
action that saves most; amounts in the user's unit."""

from __future__ import annotations

import pytest

from tui.core.config import CostModel
from tui.core.cost import amount, best_action, describe, per_hour, rate, report, saving
from tui.core.models import Instance

JS2 = CostModel(unit="SU", per_vcpu_hour=1.0, per_flavor={"r3.*": 2.0, "g3.*": 4.0, "m3.quad": 1.5},
                state_factors={"ACTIVE": 1, "SHUTOFF": 0.5, "SUSPENDED": 0.75, "SHELVED": 0, "SHELVED_OFFLOADED": 0})


def vm(name: str, status: str, flavor: str = "m3.small", vcpus: int = 2) -> Instance:
    return Instance(f"id-{name}", name, status, flavor, vcpus=vcpus)


def test_rates_by_flavor_and_state() -> None:
    assert rate(JS2, vm("a", "ACTIVE")) == 2.0
    assert rate(JS2, vm("a", "ACTIVE", "r3.large", 64)) == 128.0  # large memory: 2 SU per vCPU-hour
    assert rate(JS2, vm("a", "ACTIVE", "m3.quad", 4)) == 6.0  # an exact name before the patterns
    assert rate(JS2, vm("a", "SHUTOFF", "g3.small", 4)) == 8.0  # GPU 4 SU, stopped half
    assert rate(JS2, vm("a", "SUSPENDED")) == 1.5
    assert rate(JS2, vm("a", "SHELVED_OFFLOADED")) == 0.0
    assert rate(JS2, vm("a", "BUILD")) == 2.0  # a state the model does not list: the full rate
    assert rate(CostModel(), vm("a", "SHELVED")) == 2.0  # a model without factors prices every state alike


def test_report_shares_and_savings() -> None:
    instances = [vm("idle", "ACTIVE", vcpus=4), vm("off", "SHUTOFF", vcpus=4), vm("gone", "SHELVED_OFFLOADED")]
    r = report(JS2, instances)
    assert r.burn_rate == 6.0 and r.unit == "SU"
    rows = {i.name: i for i in r.instances}
    assert [i.name for i in r.instances] == ["idle", "off", "gone"]  # the costliest first
    assert rows["idle"].share == pytest.approx(4 / 6) and rows["gone"].share == 0
    assert (rows["idle"].stop_saves, rows["idle"].shelve_saves, rows["idle"].best) == (2.0, 4.0, "shelve")
    assert (rows["off"].stop_saves, rows["off"].shelve_saves, rows["off"].best) == (0.0, 2.0, "shelve")
    assert (rows["gone"].stop_saves, rows["gone"].shelve_saves, rows["gone"].best) == (0.0, 0.0, "")
    assert r.could_save == 6.0
    assert describe(r, "id-idle") == ("4 SU/h now, 67% of the burn rate (6 SU/h); shelving saves 4 SU/h, stopping "
                                      "saves 2 SU/h")
    assert describe(r, "id-gone") == "0 SU/h now, 0% of the burn rate (6 SU/h)" and describe(r, "nope") == ""
    assert report(JS2, []).burn_rate == 0 and report(JS2, []).instances == ()


def test_best_action_stops_where_that_saves_as_much() -> None:
    free_stop = CostModel(state_factors={"SHUTOFF": 0, "SHELVED_OFFLOADED": 0})
    assert best_action(free_stop, vm("a", "ACTIVE")) == ("stop", 2.0)
    assert best_action(JS2, vm("a", "ACTIVE")) == ("shelve", 2.0)
    assert best_action(CostModel(), vm("a", "ACTIVE")) == ("", 0.0)
    assert saving(JS2, vm("a", "SHUTOFF"), "stop") == 0.0  # stop does not apply to a stopped one


def test_amounts_in_the_users_unit() -> None:
    assert per_hour(3.5, "SU") == "3.5 SU/h"
    assert per_hour(0.125, "$") == "$0.12/h"
    assert amount(12.0, "core-hours") == "12 core-hours"
    assert amount(0, "SU") == "0 SU"
    assert amount(12345.6, "SU") == "12,346 SU"


def test_shelve_plan_says_what_it_ends_and_keeps() -> None:
    from tui.core.models import Volume
    from tui.core.shelveplan import ShelvePlan, quota_refusal

    head = vm("head", "ACTIVE")
    boot = Volume("v1", "", 16, "in-use", bootable=True, attached_to=("id-head",))
    data = Volume("v2", "data", 20, "in-use", attached_to=("id-head",))
    text = ShelvePlan(head, jupyter=True, busy=("train.ipynb",), workers=(vm("head-w1", "ACTIVE"),), tasks=3,
                      volumes=(boot, data), saves="2 SU/h").text()
    assert "every running program ends" in text
    assert "1 kernel is busy running code (train.ipynb)" in text and "unsaved notebooks are lost" in text
    assert "Dask cluster it heads loses its scheduler (head-w1 keeps running and billing, 3 tasks running now lost)" \
        in text
    assert "its 2 volumes stay attached (boot volume of head, 16 GB; volume data of head, 20 GB)" in text
    assert "meanwhile it saves 2 SU/h" in text and "Jupyter starts again, its tunnel on the same port" in text
    unknown = ShelvePlan(head, jupyter=True, busy="timed out").text()
    assert "whether kernels are busy is unknown: timed out" in unknown
    plain = ShelvePlan(vm("w", "SHUTOFF"), member_of="head").text()
    assert "Jupyter" not in plain and "worker of the Dask cluster on head" in plain and "saves" not in plain
    from tui.core.models import Quota

    q = Quota(ram_mb_limit=8192, ram_mb_used=6144, cores_limit=16, cores_used=15, instances_limit=10,
              instances_used=2)
    big = Instance("i", "big", "SHELVED_OFFLOADED", "m1.large", vcpus=2, ram_mb=8192)
    assert quota_refusal(big, q) == (
        "unshelving big needs 2 cores and 8 GiB RAM; free now: 1 core and 2 GiB RAM (15 of 16 cores, 6 GiB of 8 GiB "
        "in use)")
