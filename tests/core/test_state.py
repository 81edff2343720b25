"""The saved state (`tui.core.state`), version 2: tunnels by (instance, purpose); a version-1 file is migrated.

`state-v1.json` was written by the version-1 code (commit 01a472e^, `AppState.put` + `snooze`): one Jupyter server
with an open tunnel (`tunnel_ports: [8889]`), one without, and a snooze.
"""

from __future__ import annotations

import json
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tui.core.state import VERSION, AppState, ServerRecord, TunnelRecord

HERE = Path(__file__).parent
WITH_TUNNEL = "8d0f2c1e-4b6a-4f0e-9c3d-1a2b3c4d5e6f"
WITHOUT = "5e6f7a8b-0000-4000-8000-000000000002"


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    path = tmp_path / "state" / "state.json"
    path.parent.mkdir()
    shutil.copy(HERE / "state-v1.json", path)
    return path


def test_a_version_1_file_is_migrated_on_load(v1: Path) -> None:
    assert json.loads(v1.read_text())["version"] == 1
    state = AppState.load(v1)
    assert set(state.servers) == {WITH_TUNNEL, WITHOUT}  # the user's running servers are still known
    rec = state.servers[WITH_TUNNEL]
    assert rec == ServerRecord(WITH_TUNNEL, "jupyter", "screen", 8890, url="http://127.0.0.1:8890/lab",
                               workspace="~/workspace", logfile="~/.cades-tui/jupyter.log",
                               started_at="2026-11-20T09:15:00+00:00", auto_reopen=True)
    assert state.servers[WITHOUT].multiplexer == "tmux" and state.servers[WITHOUT].workspace == "~/work"
    # ... and so is the tunnel port: the Jupyter tunnel re-opens where the user had it
    assert state.tunnels == {(WITH_TUNNEL, "jupyter"): TunnelRecord(WITH_TUNNEL, "jupyter", 8889, "127.0.0.1", 8890)}
    assert state.tunnel(WITH_TUNNEL) == state.tunnel(WITH_TUNNEL, "jupyter")
    assert state.tunnel(WITHOUT) is None
    assert state.snoozed_until(WITHOUT) == datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_migrated_state_is_saved_as_version_2_and_round_trips(v1: Path) -> None:
    state = AppState.load(v1)
    state.snooze("another", datetime(2030, 1, 1, tzinfo=UTC))  # any change writes the whole file as version 2
    data = json.loads(v1.read_text())
    assert data["version"] == VERSION == 2
    assert "tunnel_ports" not in v1.read_text()
    assert data["tunnels"] == [{"instance": WITH_TUNNEL, "purpose": "jupyter", "local_port": 8889,
                                "remote_host": "127.0.0.1", "remote_port": 8890}]
    again = AppState.load(v1)
    assert (again.servers, again.tunnels, again.snoozes) == (state.servers, state.tunnels, state.snoozes)
    assert stat.S_IMODE(v1.stat().st_mode) == 0o600


def test_version_1_entries_that_make_no_sense_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    server = {"instance": "i-1", "session": "jupyter", "multiplexer": "screen", "remote_port": 8888}
    path.write_text(json.dumps({"version": 1, "servers": [
        {**server, "tunnel_ports": ["not a port", 9001]},
        {**server, "instance": "i-2", "tunnel_ports": "8889"},  # not a list: no tunnel, the server is kept
        {"instance": "i-3", "tunnel_ports": [1]},  # not a server: neither
    ]}))
    state = AppState.load(path)
    assert set(state.servers) == {"i-1", "i-2"}
    assert state.tunnels == {("i-1", "jupyter"): TunnelRecord("i-1", "jupyter", 9001, remote_port=8888)}


def test_version_2_round_trip_with_several_purposes(tmp_path: Path) -> None:
    path = tmp_path / "s" / "state.json"
    state = AppState.load(path)
    assert (state.servers, state.tunnels, state.snoozes) == ({}, {}, {})
    state.put(ServerRecord("a", "jupyter", "screen", 8888, url="http://127.0.0.1:8888/lab?token=secret"))
    state.put_tunnel(TunnelRecord("a", "jupyter", 18888, remote_port=8888))
    state.put_tunnel(TunnelRecord("a", "dask-dashboard", 18787, remote_host="10.0.0.5", remote_port=8787))
    state.put_tunnel(TunnelRecord("b", "jupyter", 18889, remote_port=8888))
    again = AppState.load(path)
    assert again.tunnels == state.tunnels and len(again.tunnels) == 3
    assert again.tunnel("a", "dask-dashboard") == TunnelRecord("a", "dask-dashboard", 18787, "10.0.0.5", 8787)
    assert "secret" not in path.read_text() and again.servers["a"].url == "http://127.0.0.1:8888/lab"
    # the same record again does not rewrite the file
    before = path.stat()
    again.put_tunnel(TunnelRecord("a", "jupyter", 18888, remote_port=8888))
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    again.put_tunnel(TunnelRecord("a", "jupyter", 18890, remote_port=8888))  # a new port: saved
    assert AppState.load(path).tunnel("a").local_port == 18890  # type: ignore[union-attr]


def test_forget_stops_jupyter_only_and_forget_instance_drops_everything(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = AppState(path)
    state.put(ServerRecord("a", "jupyter", "screen", 8888))
    state.put_tunnel(TunnelRecord("a", "jupyter", 18888, remote_port=8888))
    state.put_tunnel(TunnelRecord("a", "dask-dashboard", 18787, remote_port=8787))
    state.put(ServerRecord("b", "jupyter", "screen", 8888))
    state.put_tunnel(TunnelRecord("b", "jupyter", 18889, remote_port=8888))
    state.snooze("a", datetime(2030, 1, 1, tzinfo=UTC))

    state.forget("a")  # Jupyter stopped on a: its server and Jupyter tunnel go, the dashboard tunnel stays
    saved = AppState.load(path)
    assert set(saved.servers) == {"b"} and set(saved.tunnels) == {("a", "dask-dashboard"), ("b", "jupyter")}
    assert saved.snoozed_until("a") is not None

    state.drop_tunnel("b")
    assert AppState.load(path).tunnel("b") is None and "b" in AppState.load(path).servers

    state.forget_instance("a")  # a was deleted: nothing of it is left
    saved = AppState.load(path)
    assert saved.tunnels == {} and saved.snoozes == {} and set(saved.servers) == {"b"}
    path.unlink()
    state.forget_instance("a")  # nothing to forget: the file is not rewritten
    state.drop_tunnel("a", "dask-dashboard")
    assert not path.exists()


def test_unreadable_or_odd_files_are_an_empty_cache(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    for text in ("{not json", "[]", '"x"', json.dumps({"version": 2, "servers": {}, "tunnels": "x", "snoozes": []})):
        path.write_text(text)
        state = AppState.load(path)
        assert (state.servers, state.tunnels, state.snoozes) == ({}, {}, {}), text
    path.write_text(json.dumps({"version": 3, "future": True, "tunnels": [
        {"instance": "a", "purpose": "jupyter", "local_port": 1, "remote_port": 2, "new_field": "ignored"},
        {"instance": "a"},  # incomplete: skipped
        {"instance": "b", "purpose": "x", "local_port": "nope"},
    ]}))
    assert AppState.load(path).tunnels == {("a", "jupyter"): TunnelRecord("a", "jupyter", 1, remote_port=2)}


def test_the_last_local_port_outlives_its_tunnel(tmp_path: Path) -> None:
    state = AppState(tmp_path / "state.json")
    state.put_tunnel(TunnelRecord("i1", "jupyter", 8890, remote_port=8889))
    state.put_tunnel(TunnelRecord("i1", "dask-dashboard", 8790, remote_port=8787))
    state.forget("i1")  # Jupyter stopped: its tunnel record goes, its port is still preferred
    loaded = AppState.load(tmp_path / "state.json")
    assert loaded.tunnel("i1") is None and loaded.last_port("i1") == 8890
    assert loaded.last_port("i1", "dask-dashboard") == 8790 and loaded.last_port("i2") == 0
    loaded.forget_instance("i1")
    assert AppState.load(tmp_path / "state.json").last_port("i1") == 0
