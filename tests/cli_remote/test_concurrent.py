"""Eight processes at once against one sandbox (issue 19 item 2): the app (headless, in this process, snoozing each
VM with `z`) and seven `cades-tui` commands — five `jupyter start` of the same VM and one on each of two others.
0 records lost, 1 Jupyter server on the VM all five started, every one of them reports it.

Before: each process saved its own copy of the state (the app's snooze removed the records the commands had saved),
and the starts of the same VM each found no session and started their own (2 of 29 rounds from two terminals).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from typing import Any

import pytest

from tui.__main__ import main
from tui.core import paths
from tui.core.state import AppState

from .conftest import CliWorld

STARTS = 5  # of the same VM


@pytest.fixture(scope="module")
def two_more(cli_world: CliWorld) -> Iterator[list[tuple[str, str]]]:
    """Two more VMs in the module's sandbox: (name, id) each."""
    made: list[tuple[str, str]] = []
    with pytest.MonkeyPatch.context() as mp:
        for var, value in cli_world.env.items():
            mp.setenv(var, value)
        try:
            for _ in range(2):
                name = f"cli-{uuid.uuid4().hex[:6]}"
                out = io.StringIO()
                with redirect_stdout(out):
                    assert main(["launch", name, "--wait", "--json"]) == 0
                made.append((name, json.loads(out.getvalue())["id"]))
            yield made
        finally:
            for name, _ in made:
                with redirect_stdout(io.StringIO()):
                    main(["delete", name, "--yes", "--delete-volumes"])  # also ends the VM's processes


def screen_sessions(world: CliWorld, iid: str, name: str = "jupyter") -> list[str]:
    """The VM's live screen sessions named `name`, as `screen -ls` on the VM lists them (the sandbox's VMs run here,
    each with its own SCREENDIR)."""
    host = world.sandbox.ssh_host(iid)
    out = subprocess.run(["screen", "-ls"], env={**os.environ, "SCREENDIR": str(host.screendir)},
                         capture_output=True, text=True, check=False).stdout
    return [line.split()[0] for line in out.splitlines()
            if line.split() and line.split()[0].endswith("." + name) and "dead" not in line.lower()]


async def until(pilot: Any, check: Callable[[], bool], what: str, timeout: float = 120) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


async def snooze_in_the_app(app: Any, pilot: Any, iid: str, notes: list[str]) -> None:
    """Select the VM's row and press z, as a user would; wait until the app says it is done."""
    from tui.ui.widgets.tables import InstancesTable

    table = app.query_one(InstancesTable)
    table.focus()
    table.move_cursor(row=table.get_row_index(iid))
    await pilot.pause()
    assert table.selected is not None and table.selected.id == iid
    name = table.selected.name
    await pilot.press("z")
    await until(pilot, lambda: any(f"Idle reminders for {name} are quiet until" in n for n in notes),
                f"the snooze of {name}")


async def test_eight_processes_at_once_lose_no_record_and_start_one_jupyter(
    cli_world: CliWorld, two_more: list[tuple[str, str]], subprocess_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from textual.notifications import Notify

    from tui.core.config import load_settings
    from tui.core.engine import CoreEngine, open_cloud
    from tui.ui.app import CadesApp

    for var, value in cli_world.env.items():
        monkeypatch.setenv(var, value)
    state_file = paths.state_dir() / "state.json"
    vms = [(cli_world.name, cli_world.iid), *two_more]
    ids = [iid for _, iid in vms]
    settings = load_settings()
    app = CadesApp(settings, lambda emit: CoreEngine(settings, open_cloud(settings), emit))
    commands = [[cli_world.name]] * STARTS + [[name] for name, _ in two_more]
    procs: list[subprocess.Popen[str]] = []
    notes: list[str] = []

    def hook(message: object) -> None:
        if isinstance(message, Notify):
            notes.append(message.notification.message)

    try:
        async with app.run_test(size=(120, 40), notifications=True, message_hook=hook) as pilot:
            await until(pilot, lambda: app.engine is not None
                        and set(ids) <= set(app.query_one("InstancesTable").instances), "the app's instances")
            assert app.engine.manager.state.servers == {}  # the app has read the state: nothing yet
            procs = [subprocess.Popen([sys.executable, "-m", "tui", "jupyter", "start", *args], env=subprocess_env,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for args in commands]
            await snooze_in_the_app(app, pilot, ids[0], notes)  # while the commands run
            await until(pilot, lambda: bool(AppState(state_file).servers) or all(p.poll() is not None for p in procs),
                        "a command's first record", 300)
            await snooze_in_the_app(app, pilot, ids[1], notes)
            await until(pilot, lambda: all(p.poll() is not None for p in procs), "the commands", 300)
            await snooze_in_the_app(app, pilot, ids[2], notes)  # after every command saved its records
        results = [(p.returncode, *p.communicate()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
    try:
        failed = [f"jupyter start {' '.join(args)}: exit {code}\n{err.strip()[-1500:]}"
                  for args, (code, _out, err) in zip(commands, results, strict=True) if code != 0]
        assert not failed, "\n\n".join(failed)  # each failure's own words, not cut short in a list's repr
        saved = AppState(state_file)
        assert set(saved.servers) == set(ids), json.loads(state_file.read_text())  # 0 records lost
        assert set(saved.snoozes) == set(ids), json.loads(state_file.read_text())
        assert all(saved.last_port(iid) for iid in ids), json.loads(state_file.read_text())
        assert len(screen_sessions(cli_world, cli_world.iid)) == 1  # 1 Jupyter on the VM all five started
        cli_world.runtime_token()  # (and one Jupyter process: one runtime file)
        ports = {re.search(r"server port (\d+) on the VM", out).group(1)  # type: ignore[union-attr]
                 for _, out, _ in results[:STARTS]}
        assert len(ports) == 1 and int(ports.pop()) == saved.servers[cli_world.iid].remote_port  # all report it
        stop(cli_world.name, subprocess_env)  # one stop ends it: there is no second one
        assert screen_sessions(cli_world, cli_world.iid) == []
    finally:
        for name, _ in vms:
            stop(name, subprocess_env)


def stop(name: str, env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "tui", "jupyter", "stop", name, "--force"], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done
