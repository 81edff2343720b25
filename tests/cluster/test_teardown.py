"""Nothing is left billing: deleting a head deletes its cluster, `cluster delete` works after the head is gone,
what deleted heads left is found, and `cluster status` shows lost and unjoined workers — the commands a user types,
against a sandbox cloud of its own (real instances and screen sessions, dask from PyPI in the test venv, which is
every VM's environment)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._support import running_sandbox
from tui.__main__ import main
from tui.core.cluster import commands as cmd
from tui.sandbox.sshhost import free_port

pytestmark = pytest.mark.timeout(400)

CLI = Callable[..., tuple[str, str]]


@pytest.fixture(scope="module")
def own_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_sandbox(tmp_path_factory.mktemp("teardown")) as sandbox:
        sandbox.set_quota(ram_mb=64 * 1024, cores=64, instances=20, gigabytes=1000)
        yield sandbox


@pytest.fixture(scope="module")
def cloud(own_sandbox: Any) -> Iterator[Any]:
    from tui.core.cloud.openstack_cloud import OpenStackCloud

    c = OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=own_sandbox.clouds_yaml)
    try:
        yield c
    finally:
        c.conn.close()


@pytest.fixture
def profile(own_sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"cloud: sandbox\nclouds_yaml: {own_sandbox.clouds_yaml}\n"
        f"setup:\n  env_path: {sys.prefix}\n"
        f"cluster:\n  head_worker: false\n  scheduler_port: {free_port()}\n  dashboard_port: {free_port()}\n")
    monkeypatch.setenv("CADES_TUI_CONFIG", str(path))
    monkeypatch.delenv("OS_CLOUD", raising=False)
    return path


@pytest.fixture
def cli(profile: Path, capfd: pytest.CaptureFixture[str]) -> CLI:
    def run(*args: str, expect: int = 0) -> tuple[str, str]:
        code = main(list(args))
        out, err = capfd.readouterr()  # fd level: `ssh` runs OpenSSH as a child
        assert code == expect, f"exit {code} != {expect}\nstdout: {out}\nstderr: {err}"
        return out, err

    return run


def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait for a condition (polled), failing with `what` when it does not hold in time."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def names(cloud: Any, prefix: str) -> list[str]:
    return sorted(i.name for i in cloud.list_instances() if i.name == prefix or i.name.startswith(prefix + "-w"))


def groups(cloud: Any) -> list[str]:
    return sorted(g.name for g in cloud.conn.network.security_groups() if g.name.startswith("cades-dask-"))


def volumes_of(cloud: Any, servers: set[str]) -> list[Any]:
    return [v for v in cloud.list_volumes() if set(v.attached_to) & servers]


def test_status_shows_lost_workers_and_deleting_the_head_deletes_its_cluster(
        cli: CLI, cloud: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cli("launch", "hx", "--wait")
    cli("cluster", "create", "hx", "--workers", "2")
    ids = {i.id for i in cloud.list_instances() if i.name.startswith("hx")}
    assert names(cloud, "hx") == ["hx", "hx-w1", "hx-w2"] and "cades-dask-hx" in groups(cloud)

    # A worker whose session died is shown as lost (it still bills), in text and JSON.
    cli("ssh", "hx-w1", "--", f"screen -S {cmd.WORKER_SESSION} -X quit")

    def lost() -> bool:
        rows = json.loads(cli("cluster", "status", "hx", "--json")[0])["workers"]
        return {w["name"]: w["state"] for w in rows}.get("hx-w1") == "lost"
    until(lost, 60, "hx-w1 shown as lost")
    out, _ = cli("cluster", "status", "hx")
    assert "hx-w1" in out and "lost" in out and "its worker session ended" in out
    assert "hx-w2" in out

    # A deliberate scale-down: no "connection … lost" for the worker it deleted.
    _, err = cli("cluster", "scale", "hx", "1", "--yes")
    assert "lost" not in err.lower(), err
    assert names(cloud, "hx") == ["hx", "hx-w1"]

    # The delete prompt says that the head runs a cluster and what goes with it (a fake terminal answers no).
    prompts: list[str] = []

    def fake_terminal(prompt: str, expected: str) -> bool:
        prompts.append(prompt)
        return False
    monkeypatch.setattr("tui.cli.instances.confirm_typed", fake_terminal)
    _, err = cli("delete", "hx", "--delete-volumes", expect=1)
    assert "nothing deleted" in err
    text = prompts[0]
    assert "hx heads a Dask cluster" in text and "1 worker instance (hx-w1)" in text, text
    assert "boot volume of hx-w1, 16 GB" in text and "security group cades-dask-hx" in text, text
    assert "Its 1 volume (boot volume of hx, 16 GB) will be DELETED" in text, text
    assert names(cloud, "hx") == ["hx", "hx-w1"]

    # --yes: the head, its workers, all their volumes and the group go; nothing lost on the way.
    out, err = cli("delete", "hx", "--yes", "--delete-volumes")
    assert "The Dask cluster of hx is deleted too" in out and "hx-w1" in out
    assert "lost" not in err.lower(), err
    assert names(cloud, "hx") == [] and "cades-dask-hx" not in groups(cloud)
    until(lambda: not volumes_of(cloud, ids) and not [v for v in cloud.list_volumes() if v.status == "in-use"],
          30, "the volumes deleted")
    out, _ = cli("cluster", "delete")
    assert "Nothing left over" in out


def test_leftovers_are_found_and_cluster_delete_works_after_the_head_is_gone(cli: CLI, cloud: Any) -> None:
    cli("launch", "hz", "--wait")
    cli("cluster", "create", "hz", "--workers", "1")
    head = cloud.get_instance("hz")
    cloud.delete(head.id, delete_volumes=True)  # the head deleted elsewhere (the cloud's web dashboard, say)
    cloud.create_cluster_security_group("cades-dask-ghost")  # a group left with no member at all

    out, err = cli("cluster", "delete", expect=2)  # found and listed; deleting needs a terminal or --yes
    assert "pass --yes" in err
    assert "Left over from the Dask cluster of hz" in out and "1 worker instance (hz-w1" in out, out
    assert "boot volume of hz-w1, 16 GB" in out and "the security group cades-dask-hz" in out, out
    assert "Left over from the Dask cluster of ghost" in out and "cades-dask-ghost" in out, out

    _, err = cli("cluster", "delete", "nosuch", "--yes", expect=1)
    assert "no instance and no Dask cluster named 'nosuch'" in err

    out, _ = cli("cluster", "delete", "hz", "--yes")  # the head is gone: what its cluster left
    assert "hz-w1" in out
    assert names(cloud, "hz") == [] and "cades-dask-hz" not in groups(cloud)
    assert "cades-dask-ghost" in groups(cloud)

    out, _ = cli("cluster", "delete", "--yes")
    assert "ghost" in out and groups(cloud) == []
    out, _ = cli("cluster", "delete")
    assert "Nothing left over" in out


def test_an_interrupted_create_leaves_workers_shown_as_unjoined(cli: CLI, cloud: Any, own_sandbox: Any,
                                                                profile: Path) -> None:
    cli("launch", "hy", "--wait")
    own_sandbox.faults.never_active = "hy-w1"  # its build never ends: create waits for it
    env = {**os.environ, "CADES_TUI_CONFIG": str(profile)}
    proc = subprocess.Popen([sys.executable, "-m", "tui", "cluster", "create", "hy", "--workers", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        until(lambda: "hy-w1" in names(cloud, "hy"), 120, "hy-w1 launched")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        own_sandbox.faults.never_active = ""
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (out, err)
    assert "interrupted" in err and "hy-w1" in out + err and "unjoined" in out + err, (out, err)

    out, err = cli("cluster", "status", "hy", expect=1)
    assert "hy-w1  unjoined" in out and "still bill" in out, (out, err)
    status = json.loads(cli("cluster", "status", "hy", "--json", expect=1)[0])
    assert [(w["name"], w["state"]) for w in status["workers"]] == [("hy-w1", "unjoined")]

    cli("delete", "hy", "--yes", "--delete-volumes")
    assert names(cloud, "hy") == [] and "cades-dask-hy" not in groups(cloud)


def test_the_prompts_say_when_jupyter_runs(cli: CLI, cloud: Any, profile: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    profile.write_text(profile.read_text() + f"jupyter:\n  port: {free_port()}\n  local_port: 0\n")
    cli("launch", "hj", "--wait")
    cli("cluster", "create", "hj", "--workers", "1")
    prompts: list[str] = []

    def fake_terminal(prompt: str, expected: str) -> bool:
        prompts.append(prompt)
        return False
    monkeypatch.setattr("tui.cli.common.confirm_typed", fake_terminal)
    monkeypatch.setattr("tui.cli.instances.confirm_typed", fake_terminal)

    # No Jupyter yet: neither prompt claims it runs.
    cli("cluster", "delete", "hj", expect=1)
    cli("delete", "hj", expect=1)
    assert "Jupyter" not in prompts[0] and "hj stays" in prompts[0], prompts[0]
    assert "Jupyter" not in prompts[1], prompts[1]

    cli("jupyter", "start", "hj")
    cli("cluster", "delete", "hj", expect=1)
    cli("delete", "hj", expect=1)
    assert "hj stays and its Jupyter keeps running" in prompts[2], prompts[2]
    assert "Jupyter is running on hj" in prompts[3] and "hj heads a Dask cluster" in prompts[3], prompts[3]
    assert names(cloud, "hj") == ["hj", "hj-w1"]

    cli("delete", "hj", "--yes", "--delete-volumes")
    assert names(cloud, "hj") == [] and "cades-dask-hj" not in groups(cloud)
