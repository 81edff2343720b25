"""`cades-tui shelve`, `unshelve` and `cost` against a sandbox of their own (its quota is changed here): exit codes,
the refusal of an unshelve for quota with the numbers, the SSH host down while shelved and back with the same disk,
and `cost --json`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._support import running_sandbox
from tui.__main__ import main

COST = """\
cloud: sandbox
cost:
  sandbox:
    unit: SU
    per_vcpu_hour: 1
    per_flavor: {"c1.*": 2}
    state_factors: {ACTIVE: 1, SHUTOFF: 0.5, SUSPENDED: 0.75, SHELVED: 0, SHELVED_OFFLOADED: 0}
"""


@pytest.fixture
def own(tmp_path: Path) -> Iterator[Any]:
    with running_sandbox(tmp_path / "sb") as sb:
        yield sb


@pytest.fixture
def cli(own: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> Callable[..., str]:
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(own.clouds_yaml))
    monkeypatch.setenv("OS_CLOUD", "sandbox")
    monkeypatch.setattr("tui.core.cloud.openstack_cloud.POLL_S", 0.05)
    (tmp_path / "cost.yaml").write_text(COST)

    def run(*args: str, expect: int = 0, both: bool = False) -> str:
        code = main(list(args))
        out, errout = capsys.readouterr()
        assert code == expect, f"exit {code} != {expect}\nstdout: {out}\nstderr: {errout}"
        return out + errout if both else out if expect == 0 else errout

    return run


def test_shelve_unshelve_quota_refusal_and_same_disk(cli: Callable[..., str], own: Any) -> None:
    vm = json.loads(cli("launch", "shelf", "--flavor", "m1.small", "--wait", "--json"))  # 4 GiB of the 8
    host = own.ssh_host(vm["id"])
    (host.home / "notes.txt").write_text("kept")  # the VM's disk
    assert cli("shelve", "shelf", expect=2).startswith("cades-tui: error: refusing to shelve without a terminal")
    assert json.loads(cli("show", "shelf", "--json"))["status"] == "ACTIVE"  # refused before any change

    out = cli("shelve", "shelf", "--yes", both=True)
    assert "shelf: ACTIVE (shelving)" in out and "shelf is SHELVED_OFFLOADED" in out
    assert "cades-tui unshelve shelf" in out
    assert not host.running
    assert "already SHELVED_OFFLOADED" in cli("shelve", "shelf", "--yes", expect=1)
    assert json.loads(cli("quota", "--json"))["ram_mb_used"] == 0  # an offloaded server holds no RAM

    cli("launch", "filler", "--flavor", "m1.medium", "--wait")  # 8 GiB: fits only while shelf is offloaded
    refused = cli("unshelve", "shelf", expect=1)
    assert refused.count("\n") == 1, refused  # one line
    assert ("unshelving shelf needs 1 core and 4 GiB RAM; free now: 14 cores and no RAM (2 of 16 cores, 8 GiB of "
            "8 GiB in use)") in refused
    assert json.loads(cli("show", "shelf", "--json"))["status"] == "SHELVED_OFFLOADED"

    cli("delete", "filler", "--yes")
    out = cli("unshelve", "shelf", "--wait", both=True)
    assert "(unshelving)" in out and "(spawning)" in out and "shelf is ACTIVE" in out
    assert host.running and (host.home / "notes.txt").read_text() == "kept"
    assert "not shelved" in cli("unshelve", "shelf", expect=1)
    assert "not found" in cli("unshelve", "nothing-such", expect=1)


def test_cost_json_and_its_profile(cli: Callable[..., str], own: Any, tmp_path: Path) -> None:
    profile = str(tmp_path / "cost.yaml")
    refused = cli("cost", expect=2)
    assert "no cost model for cloud 'sandbox'" in refused and "cost:" in refused
    cli("launch", "a", "--flavor", "m1.small", "--wait")  # 1 vCPU × 1 SU
    cli("launch", "b", "--flavor", "c1.small", "--wait")  # 2 vCPU × 2 SU (c1.*)
    cli("stop", "b")
    report = json.loads(cli("--config", profile, "cost", "--json"))
    assert report["unit"] == "SU" and report["burn_rate"] == pytest.approx(3.0)  # 1 + 4 × 0.5
    rows = {r["name"]: r for r in report["instances"]}
    assert rows["a"] | {"id": ""} == {"id": "", "name": "a", "status": "ACTIVE", "flavor": "m1.small", "vcpus": 1,
                                      "rate": 1.0, "share": pytest.approx(1 / 3), "stop_saves": 0.5,
                                      "shelve_saves": 1.0, "best": "shelve"}
    assert (rows["b"]["rate"], rows["b"]["stop_saves"], rows["b"]["shelve_saves"], rows["b"]["best"]) == (
        2.0, 0.0, 2.0, "shelve")
    text = cli("--config", profile, "cost")
    assert "Burn rate now: 3 SU/h (72 SU a day)" in text and "SHELVE SAVES" in text
    cli("--config", profile, "shelve", "a", "--yes")
    assert json.loads(cli("--config", profile, "cost", "--json"))["burn_rate"] == pytest.approx(2.0)


@pytest.mark.parametrize(("model", "says"), [
    ("state_factors: {STOPPED: 0.5}", "cost.sandbox.state_factors: unknown name 'STOPPED' — Nova calls a stopped "
                                      "server SHUTOFF"),
    ("state_factors: {SHELVED: -1}", "cost.sandbox.state_factors.SHELVED: expected one of ACTIVE"),
    ("per_vcpu_hour: lots", "cost.sandbox.per_vcpu_hour: expected a number, got 'lots'"),
    ("per_vcpu_hour: -2", "cost.sandbox.per_vcpu_hour: expected a rate per vCPU-hour, 0 or more"),
    ("unit: 'service units'", "cost.sandbox.unit: expected a unit of 1-12 characters without spaces"),
    ("per_flavor: [m1.small]", "cost.sandbox.per_flavor: expected a mapping of a flavor name or pattern"),
    ("rate: 1", "unknown key 'cost.sandbox.rate' — expected one of: per_flavor, per_vcpu_hour, state_factors, unit"),
])
def test_bad_cost_models_are_one_line_exit_2(model: str, says: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"cloud: sandbox\ncost:\n  sandbox:\n    {model}\n")
    assert main(["--config", str(path), "cost"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}:4: " in err and says in err, err
