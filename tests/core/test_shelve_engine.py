"""`CoreEngine.shelving.shelve` / `unshelve` on the sandbox's real SSH hosts and a real Jupyter: the confirmation sees
what shelving ends (Jupyter), a "no" changes nothing, the tunnel is closed before and Jupyter — which the VM's
power-off ended — runs again after the unshelve, its tunnel on the same local port, a new server answering."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests._support import launch
from tui.core.api import Cancelled
from tui.core.engine import CoreEngine
from tui.core.events import JupyterState
from tui.core.jupyter import http
from tui.core.models import Instance
from tui.core.state import AppState

from .conftest import Cloudy, Events

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module")
async def shelf(cloudy: Cloudy, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[CoreEngine, Instance]]:
    monkeypatch.setattr("tui.core.cloud.openstack_cloud.POLL_S", 0.05)
    name = f"core-shelf-{uuid.uuid4().hex[:6]}"
    engine = cloudy.engine(Events())
    try:
        yield engine, launch(cloudy.cloud, name, cloudy.services.keystore)
    finally:
        await engine.aclose()
        cloudy.cloud.delete(name, delete_volumes=True)


async def test_shelve_asks_then_unshelve_brings_jupyter_back_on_its_port(shelf: tuple[CoreEngine, Instance],
                                                                         cloudy: Cloudy) -> None:
    engine, inst = shelf
    started = await engine.jupyter.start(inst)
    before = engine.manager.server(inst.id)
    assert before is not None
    port = started.local_port
    asked: list[str] = []

    async def no(text: str) -> bool:
        asked.append(text)
        return False

    with pytest.raises(Cancelled, match="nothing changed"):
        await engine.shelving.shelve(inst, no)
    assert "Jupyter and its kernels end" in asked[0] and "Its disk is kept" in asked[0]
    assert cloudy.cloud.get_instance(inst.id).status == "ACTIVE" and engine.manager.server(inst.id) is not None

    async def yes(text: str) -> bool:
        return True

    said: list[str] = []
    events = engine.emit
    assert isinstance(events, Events)
    mark = events.mark()
    done = await engine.shelving.shelve(inst, yes, said.append)
    assert [e.state for e in events.of(JupyterState, since=mark) if e.instance_id == inst.id] == ["stopped"]
    assert done.status == "SHELVED_OFFLOADED" and not done.task_state
    assert any("(shelving)" in line for line in said)
    assert [t for t in engine.tunnels() if t.instance == inst.id] == []  # closed before the VM went
    saved = AppState.load(cloudy.state_path)
    assert inst.id in saved.servers and saved.last_port(inst.id) == port  # what comes back is remembered
    assert not cloudy.sandbox.ssh_host(inst.id).running

    back = await engine.shelving.unshelve(done, said.append)
    assert back.instance.status == "ACTIVE" and back.jupyter_port == port and not back.jupyter_error
    api = await http.request(http.tcp_opener("127.0.0.1", port), "GET", "/api")
    assert api.status == 200
    again = engine.manager.server(inst.id)
    assert again is not None and again.pid != before.pid  # started again
