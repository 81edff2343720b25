"""`cades-tui cluster …` against a sandbox cloud of its own: the commands a user types, their output, JSON and exit
codes (real instances and sessions, dask from PyPI in the test venv, which is every VM's environment)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._support import running_sandbox
from tui.__main__ import main
from tui.sandbox.sshhost import free_port

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def own_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_sandbox(tmp_path_factory.mktemp("cluster-cli")) as sandbox:
        yield sandbox


@pytest.fixture
def cli(own_sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> Callable[..., tuple[str, str]]:
    profile = tmp_path / "config.yaml"
    profile.write_text(
        f"cloud: sandbox\nclouds_yaml: {own_sandbox.clouds_yaml}\n"
        f"setup:\n  env_path: {sys.prefix}\n"
        f"cluster:\n  head_worker: false\n  scheduler_port: {free_port()}\n  dashboard_port: {free_port()}\n")
    monkeypatch.setenv("CADES_TUI_CONFIG", str(profile))
    monkeypatch.delenv("OS_CLOUD", raising=False)

    def run(*args: str, expect: int = 0) -> tuple[str, str]:
        code = main(list(args))
        out, err = capfd.readouterr()  # fd level: `ssh` runs OpenSSH as a child
        assert code == expect, f"exit {code} != {expect}\nstdout: {out}\nstderr: {err}"
        return out, err

    return run


def test_create_status_scale_delete(cli: Callable[..., tuple[str, str]], own_sandbox: Any) -> None:
    cli("launch", "hd", "--wait")

    out, _ = cli("cluster", "status", "hd", expect=1)
    assert out == ""
    _, err = cli("cluster", "status", "hd", expect=1)
    assert "runs no Dask cluster" in err and "cades-tui cluster create hd" in err

    _, err = cli("cluster", "create", "hd", "--workers", "-1", expect=2)
    assert "--workers -1" in err and "Traceback" not in err

    out, _ = cli("cluster", "create", "hd", "--workers", "1")
    assert "hd-w1: hd-w1 is ACTIVE" in out and "hd-w1 connected" in out
    assert "WORKER" in out and "not forwarded here (cades-tui cluster dashboard hd)" in out

    out, _ = cli("cluster", "status", "hd", "--json")
    status = json.loads(out)
    assert set(status) == {"scheduler", "dashboard", "workers"} and status["dashboard"] is None
    assert status["scheduler"].startswith("tls://")
    assert [w["name"] for w in status["workers"]] == ["hd-w1"]
    assert {"state", "threads", "memory_used", "memory_limit", "tasks"} <= set(status["workers"][0])

    # A worker has no public address: `cades-tui ssh` reaches it through the head (its sshd logs each forward).
    head_log = own_sandbox.sshd_log_path("hd")
    worker = next(s for s in _servers(own_sandbox) if s.name == "hd-w1")
    hop = f"target {worker.private_ip} port {worker.ssh_port}"
    before = head_log.read_text().count(hop)
    out, _ = cli("ssh", "hd-w1", "--", "echo through-the-head")
    assert "through-the-head" in out
    assert head_log.read_text().count(hop) >= before + 2  # the host-key check (asyncssh), then OpenSSH's -W hop

    _, err = cli("cluster", "scale", "hd", "0", expect=2)  # no terminal to confirm on, no --yes
    assert "pass --yes" in err
    assert "hd-w1" in {s.name for s in _servers(own_sandbox)}
    out, _ = cli("cluster", "scale", "hd", "0", "--yes")
    assert "Retired and deleted: hd-w1" in out
    assert "hd-w1" not in {s.name for s in _servers(own_sandbox)}

    _, err = cli("cluster", "delete", "hd", expect=2)  # typed confirmation needs a terminal
    assert "pass --yes" in err
    out, _ = cli("cluster", "delete", "hd", "--yes")
    assert "Cluster on hd deleted" in out
    _, err = cli("cluster", "status", "hd", expect=1)
    assert "runs no Dask cluster" in err
    cli("delete", "hd", "--yes")


def _servers(sandbox: Any) -> list[Any]:
    from tui.core.cloud.openstack_cloud import OpenStackCloud

    cloud = OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sandbox.clouds_yaml)
    try:
        return cloud.list_instances()
    finally:
        cloud.conn.close()
