"""`cades-tui image create` of a running instance leaves its secrets out of the image (a sandbox VM with a real
Jupyter and a shelve credential; the sandbox keeps the frozen disk as a folder): Jupyter's token files and cookie
secret, the autostop credential, the tokens in the Jupyter log — and puts them back on the VM byte-identical, also
when the snapshot fails. A clone starts without them: its Jupyter makes a token and a cookie secret of its own."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests._support import wait_until
from tests.cli_remote.conftest import CliWorld
from tui.__main__ import main

Run = Callable[..., tuple[str, str]]


def _secrets(home: Path) -> dict[Path, tuple[bytes, int, int]]:
    """The secret files on the VM: content, mode, mtime."""
    runtime = home / ".local/share/jupyter/runtime"
    paths = [*runtime.glob("jpserver-*"), runtime / "jupyter_cookie_secret",
             home / ".cades-tui/autostop/credential.json"]
    return {p: (p.read_bytes(), p.stat().st_mode & 0o7777, p.stat().st_mtime_ns) for p in paths if p.exists()}


def _image_disk(sb: Any, image: str) -> Path:
    """The frozen home folder behind the project's image `image` (its volume snapshot's, or its own), once made."""
    def disk() -> Any:
        with sb.state.lock:
            rec = next(r for r in sb.state.table("images").values() if r["name"] == image)
            mapping = json.loads(rec["properties"].get("block_device_mapping") or "[]")
            return rec.get("disk") or sb.state.table("snapshots")[mapping[0]["snapshot_id"]]["disk"]

    wait_until(lambda: disk() is not None, timeout=30, what=f"the frozen disk of {image}")
    return Path(disk()["path"])


def _holding(top: Path, *needles: bytes) -> list[Path]:
    return [p for p in top.rglob("*") if p.is_file() and not p.is_symlink()
            and any(n in p.read_bytes() for n in needles)]


def test_the_image_holds_no_secret_and_the_vm_gets_them_back(cli: Run, cli_world: CliWorld,
                                                              jupyter_running: None) -> None:
    sb, name = cli_world.sandbox, cli_world.name
    home = sb.ssh_host(cli_world.iid).home
    cli("autostop", name, "--idle", "60m", "--action", "shelve")
    token = cli_world.runtime_token()
    before = _secrets(home)
    cred = json.loads((home / ".cades-tui/autostop/credential.json").read_text())
    cookie = (home / ".local/share/jupyter/runtime/jupyter_cookie_secret").read_bytes()
    log = home / ".cades-tui/jupyter.log"
    log_before = log.read_bytes()
    assert token.encode() in log_before and len(before) >= 4  # jpserver json + html, cookie, credential
    assert home / ".cades-tui/autostop/credential.json" in before

    clone = f"{name}-clone"
    try:
        _out, err = cli("image", "create", name, "--name", f"{name}-clean")  # no --wait: the secrets wait anyway

        disk = _image_disk(sb, f"{name}-clean")
        assert (disk / ".cades-tui/autostop/watchdog.py").is_file() and (disk / ".cades-tui/jupyter.log").is_file()
        assert _holding(disk, token.encode(), cred["secret"].encode(), cookie) == []
        assert not list(disk.rglob("jpserver-*")) and not list(disk.rglob("credential.json"))
        assert b"token=" + b"*" * len(token) in (disk / ".cades-tui/jupyter.log").read_bytes()
        assert "Took Jupyter's token files and the autostop credential off" in err, err
        assert f"Put back on {name}:" in err and "byte-identical" in err and "may hold them" not in err

        assert _secrets(home) == before  # back: same bytes, mode (0600) and mtime
        assert all(mode == 0o600 for path, (_data, mode, _t) in before.items() if not path.name.endswith(".html"))
        assert log.read_bytes()[:len(log_before)] == log_before  # the tokens unmasked (the server may have appended)
        cli("jupyter", "start", name)  # adopts the running server: its runtime file (one) names the same token
        assert cli_world.runtime_token() == token
        assert json.loads(cli("autostop", name, "--json")[0])["action"] == "shelve"

        made = json.loads(cli("launch", clone, "--image", f"{name}-clean", "--wait", "--json")[0])
        clone_home = sb.ssh_host(made["id"]).home
        cli("jupyter", "start", clone)  # setup writes no token: Jupyter makes one at each start
        runtime = clone_home / ".local/share/jupyter/runtime"
        (info,) = runtime.glob("jpserver-*.json")
        assert json.loads(info.read_text())["token"] not in ("", token)  # a token of its own
        assert (runtime / "jupyter_cookie_secret").read_bytes() not in (b"", cookie)
        assert not (clone_home / ".cades-tui/autostop/credential.json").exists()
    finally:  # the module's instance is deleted with its volume after the tests: no snapshot may hold it
        main(["delete", clone, "--yes", "--delete-volumes"])  # whether or not the launch got that far
        main(["image", "delete", f"{name}-clean", "--yes", "--delete-snapshots"])
        cli("autostop", name, "--off")


def test_a_failed_snapshot_puts_them_back(cli: Run, cli_world: CliWorld, jupyter_running: None) -> None:
    sb, name = cli_world.sandbox, cli_world.name
    home = sb.ssh_host(cli_world.iid).home
    before = _secrets(home)
    sb.set_quota(snapshots=0)  # Nova refuses the createImage of a volume-backed server (403) once asked
    try:
        _out, err = cli("image", "create", name, "--name", f"{name}-refused", expect=1)
    finally:
        sb.set_quota(snapshots=10)
    assert "Took Jupyter's token files" in err and f"Put back on {name}:" in err, err
    assert "Quota exceeded" in err
    assert _secrets(home) == before


def test_a_stopped_instance_is_imaged_as_it_is_and_said(cli: Run, cli_world: CliWorld) -> None:
    name = cli_world.name
    cli("stop", name)  # waits for SHUTOFF
    try:
        _out, err = cli("image", "create", name, "--name", f"{name}-stopped", "--wait")
        assert (f"{name} is SHUTOFF: its disk is imaged as it is — Jupyter's token files and the autostop "
                "credential on it are included; start it first to leave them out") in err, err
        assert "Took " not in err
    finally:
        main(["image", "delete", f"{name}-stopped", "--yes", "--delete-snapshots"])
        cli("start", name)
