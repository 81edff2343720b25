"""The SSH hosts' process helpers read /proc on Linux and `ps` where there is none (macOS): both must see the same
process tree, names and states — checked here by hiding /proc from them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui.sandbox import procs


@pytest.mark.parametrize("source", ["proc", "ps"])
def test_tree_names_and_states(source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if source == "ps":
        monkeypatch.setattr(procs, "PROC", tmp_path / "no-proc")  # as on macOS
    parent = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"])
    try:
        deadline = time.monotonic() + 5
        while len(procs.descendants(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        children = procs.descendants(parent.pid)
        assert len(children) == 2 and all(procs.comm(c) == "sleep" for c in children)
        assert procs.comm(parent.pid) == "sh" and procs.alive(parent.pid)
        assert parent.pid in procs.all_pids()
        procs.terminate_marked("CADES_SANDBOX_VM=/nowhere")  # marks nobody: nothing is signalled
        assert all(procs.alive(c) for c in children)
        for child in children:
            subprocess.run(["kill", str(child)], check=True)
        assert procs.wait_gone(children, 5)
        parent.wait(timeout=5)
        assert not procs.alive(parent.pid) and procs.stat(parent.pid) is None
    finally:
        if parent.poll() is None:
            for child in procs.descendants(parent.pid):
                subprocess.run(["kill", "-9", str(child)], check=False)
            parent.kill()
            parent.wait()


def test_no_process_table_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows: neither /proc nor ps — the helpers see nothing instead of failing."""
    monkeypatch.setattr(procs, "PROC", tmp_path / "no-proc")
    monkeypatch.setenv("PATH", str(tmp_path))  # no ps
    assert procs.all_pids() == [] and procs.descendants(1) == [] and procs.stat(1) is None
    assert procs.marked_pids("CADES_SANDBOX_VM=/x") == []
    assert procs.HARD_KILL is (procs.signal.SIGTERM if sys.platform == "win32" else procs.signal.SIGKILL)
