"""The `h` key against the sandbox: shelving asks first with what it ends (Cancel keeps it running), then the table
and the quota bar show it SHELVED_OFFLOADED and its burn rate gone; `h` again unshelves it; an unshelve the quota
cannot hold is refused with the numbers."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from tui.core.config import CostModel
from tui.ui.screens.confirm import Confirm
from tui.ui.screens.instance import DetailsScreen
from tui.ui.widgets.panes import QuotaBar
from tui.ui.widgets.tables import InstancesTable, cells


def _status(cloud: Any, name: str) -> str:
    return str(cloud.get_instance(name).status)


async def test_h_shelves_after_asking_then_unshelves(ui: Any, sb: Any, cloud: Any) -> None:
    await ui.in_thread(ui.launch, cloud, "alpha", "m1.small")  # 1 vCPU, 4 GiB
    model = CostModel(unit="SU", per_vcpu_hour=2.0, state_factors={"SHUTOFF": 0.5, "SHELVED_OFFLOADED": 0})
    make = ui.app_factory(sb)
    watch = ui.Watch()
    app = make(cost={"sandbox": model})
    async with app.run_test(size=(80, 24), message_hook=watch.hook) as pilot:
        table = app.query_one(InstancesTable)
        bar = app.query_one(QuotaBar)
        await ui.wait_for(pilot, lambda: table.selected is not None and "burn 2 SU/h" in str(bar.render()))
        await pilot.press("enter")  # the details say its part of the burn rate
        details = await ui.screen(pilot, DetailsScreen)
        assert "2 SU/h now, 100% of the burn rate (2 SU/h); shelving saves 2 SU/h, stopping saves 1 SU/h" in str(
            details.query_one("#details-body", Static).render())
        await pilot.press("escape")
        await pilot.press("h")
        dialog = await ui.screen(pilot, Confirm)
        body = str(dialog.body)
        assert "every running program ends" in body and "Its disk is kept" in body
        assert "saves 2 SU/h" in body and "boot volume of alpha, 16 GB" in body
        await pilot.press("enter")  # Cancel has the focus
        await ui.wait_for(pilot, lambda: any("nothing changed" in n for n in watch.notes()))
        assert await ui.in_thread(_status, cloud, "alpha") == "ACTIVE"

        await pilot.press("h")
        await ui.screen(pilot, Confirm)
        await pilot.click("#confirm")
        await ui.wait_for(pilot, lambda: table.selected is not None and table.selected.shelved
                          and table.selected.status == "SHELVED_OFFLOADED" and not table.selected.task_state, 20)
        assert await ui.in_thread(_status, cloud, "alpha") == "SHELVED_OFFLOADED"
        assert not sb.ssh_host(table.selected.id).running
        await ui.wait_for(pilot, lambda: "burn 0 SU/h" in str(bar.render()))
        assert any("alpha: ACTIVE (shelving)" in n for n in watch.notes())  # progress, as it goes
        row = cells(app.fleet.get(table.selected.id), app.clock())
        assert isinstance(row[1], Text) and row[1].plain == "SHELVED_OFFLOADED"
        assert [str(c) for c in row[3:6]] == ["–", "–", "–"]  # nothing runs: no stale uptime, Jupyter or load

        sb.set_quota(ram_mb=2048)  # the quota cannot hold it any more
        await pilot.press("h")
        await ui.wait_for(pilot, lambda: any("needs 1 core and 4 GiB RAM; free now: 16 cores and 2 GiB RAM"
                                             in n for n in watch.notes()), 20)
        sb.faults.quota.clear()
        await pilot.press("h")
        await ui.wait_for(pilot, lambda: table.selected is not None and table.selected.status == "ACTIVE"
                          and not table.selected.task_state, 20)
        assert sb.ssh_host(table.selected.id).running
        await ui.wait_for(pilot, lambda: "burn 2 SU/h" in str(bar.render()))


async def test_h_on_an_instance_that_cannot_be_shelved_says_why(ui: Any, sb: Any, cloud: Any) -> None:
    await ui.in_thread(ui.launch, cloud, "beta")
    await ui.in_thread(cloud.resize, "beta", "m1.small")  # waits in VERIFY_RESIZE
    app = ui.app_factory(sb)()
    watch = ui.Watch()
    async with app.run_test(size=(80, 24), message_hook=watch.hook) as pilot:
        table = app.query_one(InstancesTable)
        await ui.wait_for(pilot, lambda: table.selected is not None and table.selected.status == "VERIFY_RESIZE")
        await pilot.press("h")
        await ui.wait_for(pilot, lambda: any("can be shelved when ACTIVE or SHUTOFF" in n for n in watch.notes()))
        assert not isinstance(app.screen, Confirm)
        assert await ui.in_thread(_status, cloud, "beta") == "VERIFY_RESIZE"
