"""Several owners of one state file at once — the app, CLI commands, a second app — lose no record (issue 19 item 2).

Each `AppState` applies its change to the file as it is now, under the file's lock; none saves a copy of its own.
On the code before it (each process saved its whole in-memory copy) every test here loses records.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tui.core import platform
from tui.core.state import AppState, ServerRecord, TunnelRecord

ROOT = Path(__file__).resolve().parents[2]
UNTIL = datetime(2031, 1, 1, tzinfo=UTC)


def test_a_cli_command_s_record_survives_the_app_s_next_write(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    app = AppState.load(path)
    app.put(ServerRecord("vm1", "jupyter", "screen", 8888))
    assert set(app.servers) == {"vm1"}  # the app has read the state
    cli = AppState.load(path)  # `cades-tui jupyter start vm2`
    cli.put(ServerRecord("vm2", "jupyter", "screen", 8889))
    cli.put_tunnel(TunnelRecord("vm2", "jupyter", 18889, remote_port=8889))
    app.snooze("vm1", UNTIL)  # the app then saves a snooze
    saved = AppState.load(path)
    assert set(saved.servers) == {"vm1", "vm2"} and saved.tunnel("vm2") is not None
    assert saved.snoozed_until("vm1") == UNTIL
    assert set(app.servers) == {"vm1", "vm2"}  # and the app's own view is fresh


def test_interleaved_operations_of_two_owners_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    a, b = AppState(path), AppState(path)
    for i in range(10):
        a.put(ServerRecord(f"a{i}", "jupyter", "screen", 9000 + i))
        b.put_tunnel(TunnelRecord(f"b{i}", "dask-dashboard", 19000 + i, remote_port=8787))
        a.snooze(f"b{i}", UNTIL)
        b.put(ServerRecord(f"b{i}", "jupyter", "tmux", 8000 + i))
    a.forget("b3")  # a forgets what b wrote: gone for both
    b.forget_instance("a4")
    for owner in (a, b, AppState(path)):
        assert set(owner.servers) == {f"a{i}" for i in range(10) if i != 4} | {f"b{i}" for i in range(10) if i != 3}
        assert len(owner.tunnels) == 10 and set(owner.snoozes) == {f"b{i}" for i in range(10)}
        assert owner.last_port("b7", "dask-dashboard") == 19007


def test_views_are_read_only_so_no_change_can_bypass_the_file(tmp_path: Path) -> None:
    state = AppState(tmp_path / "state.json")
    state.snooze("vm1", UNTIL)
    with pytest.raises(TypeError):
        state.snoozes["vm1"] = "2000-01-01"  # type: ignore[index]
    state.unsnooze("vm1")
    assert AppState(tmp_path / "state.json").snoozes == {}


def test_threads_of_one_process_each_with_an_owner_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.json"

    def writer(n: int) -> None:
        state = AppState(path)
        for i in range(15):
            state.put(ServerRecord(f"t{n}-{i}", "jupyter", "screen", 8888))
            state.snooze(f"t{n}-{i}", UNTIL)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    saved = AppState(path)
    assert len(saved.servers) == 90 and len(saved.snoozes) == 90


WRITER = """
import sys
from datetime import UTC, datetime
from tui.core.state import AppState, ServerRecord, TunnelRecord
path, n = sys.argv[1], int(sys.argv[2])
state = AppState.load(__import__("pathlib").Path(path))
state.servers  # read first, as the app does at start
sys.stdout.write("ready\\n"); sys.stdout.flush(); sys.stdin.readline()  # all start writing together
for i in range(20):
    state.put(ServerRecord(f"p{n}-{i}", "jupyter", "screen", 8888))
    state.put_tunnel(TunnelRecord(f"p{n}-{i}", "jupyter", 10000 + n * 100 + i, remote_port=8888))
    state.snooze(f"p{n}-{i}", datetime(2031, 1, 1, tzinfo=UTC))
"""


def test_eight_processes_writing_at_once_lose_no_record(tmp_path: Path) -> None:
    path = tmp_path / "state" / "state.json"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(n)], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for n in range(8)]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline() == "ready\n"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        assert [p.wait(120) for p in procs] == [0] * 8
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    data = json.loads(path.read_text())
    assert len(data["servers"]) == len(data["tunnels"]) == len(data["snoozes"]) == len(data["last_ports"]) == 160
    assert len(AppState(path).servers) == 160


def test_an_unreadable_file_is_kept_aside_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{half a file")
    state = AppState(path)
    assert state.servers == {}
    state.put(ServerRecord("vm1", "jupyter", "screen", 8888))
    assert (tmp_path / "state.json.unreadable").read_text() == "{half a file"
    assert set(AppState(path).servers) == {"vm1"}


def test_a_writer_that_cannot_get_the_lock_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    monkeypatch.setattr(AppState, "LOCK_TIMEOUT", 0.2)
    # another process is stuck holding it
    with platform.held_lock(tmp_path / "state.json.lock"), pytest.raises(TimeoutError, match="stayed locked"):
        AppState(path).put(ServerRecord("vm1", "jupyter", "screen", 8888))
    AppState(path).put(ServerRecord("vm1", "jupyter", "screen", 8888))  # released: written
    assert set(AppState(path).servers) == {"vm1"}
