"""`cades-tui image create | list | delete` against the sandbox cloud (openstacksdk over HTTP, real SSH hosts):
exit codes, one-line errors, the clone's disk, snapshots kept or deleted; and the core on an image-backed server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._support import running_sandbox, sandbox_settings
from tui.__main__ import main


@pytest.fixture
def sb(tmp_path: Path) -> Iterator[Any]:
    with running_sandbox(tmp_path / "cloud") as sandbox:
        yield sandbox


@pytest.fixture
def cli(sb: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(sb.clouds_yaml))
    monkeypatch.setenv("OS_CLOUD", "sandbox")

    def run(*args: str, expect: int = 0) -> tuple[str, str]:
        code = main(list(args))
        out, errout = capsys.readouterr()
        assert code == expect, f"exit {code} != {expect}\nstdout: {out}\nstderr: {errout}"
        return out, errout

    return run


def _one_error_line(errout: str) -> str:
    lines = [line for line in errout.splitlines() if line.startswith("cades-tui: error:")]
    assert len(lines) == 1 and "Traceback" not in errout, errout
    return lines[0]


def test_create_list_launch_delete_through_the_cli(cli: Any, sb: Any) -> None:
    src = json.loads(cli("launch", "src", "--wait", "--json")[0])
    home = sb.ssh_host(src["id"]).home
    (home / "installed.txt").write_text("numpy and friends\n")

    out, progress = cli("image", "create", "src", "--name", "env1", "--wait")
    assert "Image env1" in out and ": active" in out
    assert "volume snapshot snapshot for env1" in out and "16 GB): available" in out  # the Cinder snapshot listed
    assert "Image quota: 1 of 10 images used" in progress and "launch NAME --image env1" in progress

    listing = json.loads(cli("image", "list", "--json")[0])
    first = listing["images"][0]
    assert (first["name"], first["own"], first["status"]) == ("env1", True, "active")  # own images first
    assert [s["size_gb"] for s in first["snapshots"]] == [16]
    assert listing["quota"] == {"limit": 10, "used": 1}
    table = cli("image", "list")[0]
    assert table.splitlines()[1].startswith("env1") and "16 GB in 1 snapshot" in table and "own" in table

    clone = json.loads(cli("launch", "clone", "--image", "env1", "--wait", "--json")[0])
    assert (sb.ssh_host(clone["id"]).home / "installed.txt").read_text() == "numpy and friends\n"

    # Refused with one line each: unknown instance (1), a name taken (1), no name (2), a full quota (1).
    assert "instance 'nosuch' not found" in _one_error_line(cli("image", "create", "nosuch", "--name", "x",
                                                                expect=1)[1])
    assert "image name 'env1' is taken" in _one_error_line(cli("image", "create", "src", "--name", "env1",
                                                               expect=1)[1])
    assert "needs a name" in _one_error_line(cli("image", "create", "src", "--name", " ", expect=2)[1])
    sb.set_quota(image_count_total=1)
    line = _one_error_line(cli("image", "create", "src", "--name", "env2", expect=1)[1])
    assert "image quota full: 1 of 1 images used" in line and "image list" in line
    sb.set_quota(image_count_total=10)

    # Delete without a terminal: refused (2); with --yes the snapshot is kept and said so.
    assert "pass --yes" in _one_error_line(cli("image", "delete", "env1", expect=2)[1])
    snap_id = first["snapshot_ids"][0]
    _, said = cli("image", "delete", "env1", "--yes")
    assert "Deleted image env1" in said and f"Kept volume snapshot snapshot for env1 (16 GB, id {snap_id})" in said
    assert not [row for row in cli("image", "list")[0].splitlines() if row.startswith("env1 ")]
    assert snap_id in sb.state.table("snapshots")
    assert "image 'env1' not found" in _one_error_line(cli("image", "delete", "env1", "--yes", expect=1)[1])

    # A second image, deleted with its snapshots.
    cli("image", "create", "src", "--name", "env2", "--wait")
    _, said = cli("image", "delete", "env2", "--yes", "--delete-snapshots")
    assert "Deleted volume snapshot snapshot for env2 (16 GB)" in said
    assert [s["name"] for s in sb.state.table("snapshots").values()] == ["snapshot for env1"]

    # The kept snapshot still bills: the listing says so, and it is deleted by its id.
    assert f"Kept volume snapshot snapshot for env1 ({snap_id}, 16 GB, available): no image maps it" in cli(
        "image", "list")[0]
    assert [k["id"] for k in json.loads(cli("image", "list", "--json")[0])["kept_snapshots"]] == [snap_id]
    _, said = cli("image", "delete", snap_id, "--yes")
    assert "Deleted volume snapshot snapshot for env1 (16 GB)" in said
    assert sb.state.table("snapshots") == {} or all(s["status"] == "deleting"
                                                    for s in sb.state.table("snapshots").values())
    public = cli("image", "delete", "Ubuntu 24.04", "--yes", expect=1)[1]
    assert "not this project's (public)" in _one_error_line(public)


def test_cluster_from_an_image_the_project_does_not_have_is_refused_first(cli: Any, sb: Any) -> None:
    cli("launch", "head", "--wait", "--json")
    line = _one_error_line(cli("cluster", "create", "head", "--workers", "1", "--from-image", "nosuch", expect=1)[1])
    assert "image 'nosuch' is not one of this project's images" in line and "image list" in line
    assert [i["name"] for i in json.loads(cli("list", "--json")[0])] == ["head"]  # no worker launched
    assert not sb.state.table("images")  # and no image made


def test_the_core_on_an_image_backed_server_says_each_state(sb: Any) -> None:
    """An image-backed server (no boot volume): Glance queued -> saving -> active, said as it goes; no snapshots."""
    from tests.sandbox.conftest import connect
    from tui.core.engine import CoreEngine, open_cloud

    conn = connect(sb)
    server = conn.create_server("plain", image="Ubuntu 24.04", flavor="m1.small", network="sandbox-net", wait=True,
                                timeout=30, auto_ip=False)
    sb.delays.image_s = 1.0
    engine = CoreEngine(sandbox_settings(sb), open_cloud(sandbox_settings(sb)), lambda _e: None)
    engine.images.poll_s = 0.05
    said: list[str] = []
    made = engine.images.create("plain", "plain-env", said.append, wait=True)
    assert made.image.status == "active" and made.image.size_bytes > 0 and made.snapshots == ()
    assert said[0].startswith("Cannot log in to plain (") and "if any, are included" in said[0]  # no key pair
    assert said[1] == "Creating image plain-env of plain (its disk is uploaded)"
    states = [line.split(": ")[1].split(" ")[0].rstrip(",") for line in said if line.startswith("image plain-env:")]
    assert states == ["queued", "saving", "active"], said
    assert made.image.instance_id == server.id and made.image.own and made.image.visibility == "private"
    conn.close()
