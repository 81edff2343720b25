"""`cades-tui autostop NAME` end to end (in-process CLI, a sandbox instance): arm, read (--json), keep, the command
log, shelve's credential (0600 on the VM, never on the laptop), off, and one-line refusals (exit 2 before anything
runs; exit 1 with the command to run when there is nothing to keep)."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.cli_remote.conftest import CliWorld
from tui.core.autostop import credential

Run = Callable[..., tuple[str, str]]


def test_arm_read_keep_shelve_off(cli: Run, cli_world: CliWorld) -> None:
    name = cli_world.name
    _out, err = cli("autostop", name, "--idle", "1m", expect=2)
    assert "idle 1m: expected at least 5m" in err and len(err.strip().splitlines()) == 1
    out, _ = cli("autostop", name, "--idle", "5m")
    assert f"Autostop on {name}: stop after 5m idle" in out
    state = json.loads(cli("autostop", name, "--json")[0])
    assert state["armed"] and state["running"] and state["action"] == "stop" and state["idle_s"] == 300
    assert "Kept" in cli("autostop", name, "--keep")[0]
    log = cli("commands", name)[0]
    assert "touch \"$D/keep\"" in log and "# autostop: read the watchdog's state" in log

    out, _ = cli("autostop", name, "--idle", "5m", "--action", "shelve")
    assert "shelve after 5m idle" in out
    assert json.loads(cli("autostop", name, "--json")[0])["action"] == "shelve"  # the watchdog runs it at once
    folder = cli_world.sandbox.ssh_host(cli_world.iid).home / ".cades-tui" / "autostop"
    cred = json.loads((folder / "credential.json").read_text())
    assert (folder / "credential.json").stat().st_mode & 0o777 == 0o600
    assert cli_world.files_containing(cred["secret"]) == []  # on the VM's disk only: nothing of the laptop's has it
    assert cli_world.sandbox.state.data["app_creds"][cred["id"]]["name"] == credential.name_for(cli_world.iid)

    out, _ = cli("autostop", name, "--off")
    assert "autostop off" in out and not (folder / "credential.json").exists()
    assert cred["id"] not in cli_world.sandbox.state.data["app_creds"]  # its credential deleted too
    assert not json.loads(cli("autostop", name, "--json")[0])["armed"]
    assert "autostop off" in cli("autostop", name, "--off", "--action", "shelve")[0]  # removes, never arms
    assert not json.loads(cli("autostop", name, "--json")[0])["armed"]
    _out, err = cli("autostop", name, "--keep", expect=1)
    assert "no autostop to keep" in err and f"autostop {name} --idle 60m" in err
