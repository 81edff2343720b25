"""The app's start as `cades-tui` runs it against a cloud with a cached token: the first listing is read before
Textual loads (`quick.Prefetch`), the Instances table is part of the first frame, the listing lands in it before
the other panes' content is mounted — and without a listing the other panes are built anyway."""

from __future__ import annotations

from typing import Any

from textual import events

from tui.core.cloud import quick
from tui.core.cloud.openstack_cloud import OpenStackCloud
from tui.core.engine import CoreEngine
from tui.ui.app import CadesApp
from tui.ui.widgets.tables import FlavorsTable, InstancesTable, TunnelsTable


def _order(watch: Any) -> list[str]:
    """Mounts of the tables, the first frame (Ready) and the core's Polled messages, in the order handled."""
    seen = []
    for m in watch.messages:
        if isinstance(m, events.Mount) and isinstance(m._sender, InstancesTable | FlavorsTable | TunnelsTable):
            seen.append(f"mount {type(m._sender).__name__}")
        elif isinstance(m, events.Ready):
            seen.append("first frame")
        elif type(m).__name__ == "PolledMessage":
            seen.append("first listing" if m.event.flavors is None else "poll")
    return seen


async def test_with_a_cached_token_the_listing_lands_in_a_table_of_the_first_frame(ui: Any, sb: Any) -> None:
    sb.seed_servers(2, ssh_hosts=False)
    settings = ui.settings_for(sb)
    OpenStackCloud.from_config("sandbox", sb.clouds_yaml).list_instances()  # a previous run: the token is cached
    prefetch = quick.Prefetch("sandbox", str(sb.clouds_yaml))  # as `run_app` does, before the app exists
    assert prefetch.started

    def build_engine(emit: Any) -> CoreEngine:  # as `run_app`'s
        assert quick.first_poll("sandbox", str(sb.clouds_yaml), emit, prefetch)
        return CoreEngine(settings, OpenStackCloud.from_config("sandbox", sb.clouds_yaml), emit)

    app = CadesApp(settings, build_engine, table_first=True)
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), message_hook=watch.hook) as pilot:
        await ui.wait_for(pilot, lambda: app.query(FlavorsTable) and app.query_one(FlavorsTable).row_count > 0)
        assert app.query_one(InstancesTable).row_count == 2
        order = _order(watch)
        assert order.index("mount InstancesTable") < order.index("first frame") < order.index("first listing") \
            < order.index("mount FlavorsTable"), order
        assert order.index("mount FlavorsTable") < order.index("poll")  # and the engine's polls follow


async def test_a_table_first_start_without_a_listing_still_builds_every_pane(ui: Any, sb: Any,
                                                                          make_app: Any) -> None:
    """No first listing (no cached token, or it failed): the other panes do not wait for one longer than
    REST_AFTER_S, and the engine's first poll fills them."""
    sb.seed_servers(1, ssh_hosts=False)
    plain = make_app()
    app = CadesApp(plain.settings, plain.engine_factory, table_first=True)
    watch = ui.Watch()
    async with app.run_test(size=(120, 40), message_hook=watch.hook) as pilot:
        await ui.wait_for(pilot, lambda: app.query(TunnelsTable) and app.query_one(FlavorsTable).row_count > 0)
        assert app.query_one(InstancesTable).row_count == 1
        assert "first listing" not in _order(watch)


async def test_the_first_frame_waits_on_no_collection_and_no_live_state(ui: Any, sb: Any, make_app: Any) -> None:
    """`run_app` holds Python's collector off until the first frame; the app turns it back on then (and makes the
    live state, whose module brings the core's dataclasses, only then)."""
    import gc
    import sys

    sb.seed_servers(1, ssh_hosts=False)
    app = make_app()
    made: dict[str, bool] = {}
    watch = ui.Watch()
    original = watch.hook

    def hook(message: Any) -> None:
        if isinstance(message, events.Ready):  # handled next: the first frame is out
            made["gc on at the first frame"] = gc.isenabled()
            made["live state at the first frame"] = app._fleet is not None
        original(message)

    gc.disable()
    try:
        async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
            await ui.wait_for(pilot, lambda: app.query_one(InstancesTable).row_count == 1)
            assert gc.isenabled()  # back on, for as long as the app runs
            assert made == {"gc on at the first frame": False, "live state at the first frame": False}
            assert "tui.core.live" in sys.modules and app.fleet.version > 0
    finally:
        gc.enable()
