"""Shelve and unshelve through the app's cloud layer against real Nova (fake compute driver): the state sequence
Nova itself reports for a volume-backed server (what the app launches) — task `shelving`, then SHELVED_OFFLOADED on
no host with no task; `unshelving`, `spawning`, then ACTIVE — read both through the app's progress and by an admin
connection polling meanwhile; a second shelve of an offloaded server refused (409) as Conflict."""
from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests._support import launch
from tests.realcloud import seed
from tests.realcloud.services import RealCloud
from tui.core.cloud.base import Conflict
from tui.core.keys import KeyStore

# Nova's sequence for a volume-backed server (nova/compute/api.py shelve → shelve_offload_instance at once;
# conductor unshelve_instance → compute _unshelve_instance): (status, task_state) in the order they can appear.
SHELVE = [("ACTIVE", None), ("ACTIVE", "shelving"), ("SHELVED_OFFLOADED", None)]
UNSHELVE = [("SHELVED_OFFLOADED", None), ("SHELVED_OFFLOADED", "unshelving"), ("SHELVED_OFFLOADED", "spawning"),
            ("ACTIVE", "spawning"), ("ACTIVE", None)]


class Watch:
    """Every distinct (status, task_state) of a server, read by `conn` every 50 ms in a thread."""

    def __init__(self, conn: Any, server_id: str) -> None:
        self.conn, self.server_id, self.seen = conn, server_id, []  # type: list[tuple[str, str | None]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> None:
        s = self.conn.compute.get_server(self.server_id)
        row = (s.status, s.task_state)
        if not self.seen or self.seen[-1] != row:
            self.seen.append(row)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._read()
            time.sleep(0.05)
        self._read()

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _in_order(seen: list[tuple[str, str | None]], expected: list[tuple[str, str | None]]) -> bool:
    """`seen` is `expected` with some rows skipped (polling misses short states), never another or out of order."""
    at = 0
    for row in seen:
        while at < len(expected) and expected[at] != row:
            at += 1
        if at == len(expected):
            return False
    return True


def test_shelve_then_unshelve_a_volume_backed_server(rc_cloud: Any, realcloud: RealCloud, tmp_path: Path) -> None:
    conn = seed.connect(realcloud.layout)
    name = f"rc-shelf-{uuid.uuid4().hex[:6]}"
    inst = launch(rc_cloud, name, KeyStore(tmp_path))
    try:
        said: list[str] = []
        with Watch(conn, inst.id) as watch:
            shelved = rc_cloud.shelve(name, progress=said.append)
        assert (shelved.status, shelved.task_state) == ("SHELVED_OFFLOADED", "")
        assert _in_order(watch.seen, SHELVE), watch.seen
        assert watch.seen[-1] == ("SHELVED_OFFLOADED", None)
        assert said[-1] == f"{name}: SHELVED_OFFLOADED"
        server = conn.compute.get_server(inst.id)
        assert server.vm_state == "shelved_offloaded" and not server.compute_host  # offloaded: on no host
        assert rc_cloud.get_instance(name).volume_ids == inst.volume_ids  # its boot volume stays its own
        with pytest.raises(Conflict, match="vm_state shelved_offloaded"):
            rc_cloud.shelve(name)

        with Watch(conn, inst.id) as watch:
            back = rc_cloud.unshelve(name, progress=said.append)
        assert (back.status, back.task_state) == ("ACTIVE", "")
        assert _in_order(watch.seen, UNSHELVE), watch.seen
        assert conn.compute.get_server(inst.id).vm_state == "active"
        assert rc_cloud.stop(name).status == "SHUTOFF"  # a stopped server shelves too
        assert rc_cloud.shelve(name).status == "SHELVED_OFFLOADED"
        assert rc_cloud.unshelve(name).status == "ACTIVE"
    finally:
        rc_cloud.delete(name, delete_volumes=True)
    assert conn.compute.find_server(inst.id, ignore_missing=True) is None
