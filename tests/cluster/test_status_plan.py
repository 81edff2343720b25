"""The scheduler status parser (on a real /json/identity.json of distributed 2026.8.0) and worker plans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui.core.cloud.base import InvalidInput, NotFound, QuotaExceeded
from tui.core.cluster.plan import capacity, plan_workers, worker_names
from tui.core.cluster.status import parse_identity, parse_prometheus
from tui.core.models import Flavor, Instance, Quota

RECORDED = Path(__file__).with_name("identity-2026.8.0.json")


def test_identity_json_becomes_worker_rows() -> None:
    status = parse_identity(json.loads(RECORDED.read_text()), "http://127.0.0.1:18787/status")
    assert status.scheduler == "tcp://127.0.0.1:38786"
    assert status.names == ("w1",) and status.threads == 1
    w = status.workers[0]
    assert (w.address, w.status, w.memory_limit, w.processing) == ("tcp://127.0.0.1:43871", "running", 500000000, 0)
    assert w.memory_used == 49250304 and w.last_seen > 1.7e9


def test_identity_rows_sorted_naturally_and_processing_counted() -> None:
    def worker(name: str, counts: dict[str, int]) -> dict[str, object]:
        return {"name": name, "nthreads": 2, "memory_limit": 0, "status": "running", "last_seen": 1.0,
                "metrics": {"memory": 5, "task_counts": counts}}

    data = {"type": "Scheduler", "address": "tls://10.0.0.5:8786", "workers": {
        "tls://a": worker("h-w10", {"executing": 2, "memory": 7}), "tls://b": worker("h-w2", {"ready": 3})}}
    status = parse_identity(data)
    assert status.names == ("h-w2", "h-w10")
    assert [w.processing for w in status.workers] == [3, 2]
    with pytest.raises(ValueError):
        parse_identity({"type": "Worker"})


def test_prometheus_text() -> None:
    text = '# HELP x\ndask_scheduler_workers{state="idle"} 2.0\nprocess_open_fds 14.0\nbad line\n'
    assert parse_prometheus(text) == {'dask_scheduler_workers{state="idle"}': 2.0, "process_open_fds": 14.0}


FLAVORS = [
    Flavor("1", "m1.small", 1, 2048, 20), Flavor("2", "c1.large", 4, 4096, 20),
    Flavor("3", "c1.small", 2, 2048, 20), Flavor("4", "c1.tiny", 1, 1024, 20),
]
HEAD = Instance("h", "head", "ACTIVE")


def quota(ram: int = 8192, cores: int = 16, instances: int = 10, gb: int = -1) -> Quota:
    return Quota(ram_mb_limit=ram, ram_mb_used=0, cores_limit=cores, cores_used=0, instances_limit=instances,
                 instances_used=0, gigabytes_limit=gb, gigabytes_used=0)


def test_names_continue_numbering() -> None:
    assert worker_names("head", 2) == ("head-w1", "head-w2")
    assert worker_names("head", 2, ["head", "head-w1", "head-w3", "other-w9", "head-wx"]) == ("head-w4", "head-w5")


def test_default_is_the_smallest_fitting_c1() -> None:
    plan = plan_workers(HEAD, 3, FLAVORS, quota())
    assert plan.flavor.name == "c1.tiny" and plan.names == ("head-w1", "head-w2", "head-w3")
    assert "c1" in plan.notes[0]
    specs = plan.specs(image="img", network="net", key_name="k")
    assert [s.name for s in specs] == list(plan.names) and {s.flavor for s in specs} == {"4"}


def test_refused_up_front_with_the_numbers() -> None:
    with pytest.raises(QuotaExceeded) as err:
        plan_workers(HEAD, 9, FLAVORS, quota(ram=8192, cores=16))
    assert "need 9 GiB RAM, 8 GiB left" in str(err.value) and "at most 8 workers of c1.tiny fit" in str(err.value)
    with pytest.raises(QuotaExceeded, match="need 4 cores, 3 left"):
        plan_workers(HEAD, 2, FLAVORS, quota(cores=3), "c1.small")
    with pytest.raises(QuotaExceeded, match=r"need 48 GB of volumes, 40 GB left"):
        plan_workers(HEAD, 3, FLAVORS, quota(gb=40))
    assert capacity(FLAVORS[3], quota(gb=40), 16) == 2


def test_bad_requests() -> None:
    with pytest.raises(InvalidInput):
        plan_workers(HEAD, 0, FLAVORS, quota())
    with pytest.raises(NotFound):
        plan_workers(HEAD, 1, FLAVORS, quota(), "x1.huge")
    no_c1 = [f for f in FLAVORS if not f.name.startswith("c1")]
    assert plan_workers(HEAD, 1, no_c1, quota()).flavor.name == "m1.small"


def test_heads_are_the_names_with_worker_siblings_found_in_one_pass() -> None:
    from tui.core.cluster.plan import heads_named, worker_numbers

    names = ["analytics-1", "analytics-1-w1", "analytics-1-w12", "lab", "lab-w", "lab-wx", "x-w1-w2", "solo-w3"]
    assert heads_named(names) == {"analytics-1", "x-w1", "solo"}
    # the same heads as asking each name for its workers, which is quadratic
    assert {n for n in names if worker_numbers(n, names)} == heads_named(names) & set(names)


def test_workers_that_fit_is_what_the_plan_accepts() -> None:
    """The app's worker-count prompt defaults to it: the plan takes that many, and refuses one more."""
    from tui.core.cluster.plan import workers_that_fit

    for q, flavor, fit in [(quota(), "", 8), (quota(gb=40), "", 2), (quota(cores=3), "c1.small", 1),
                           (quota(instances=0), "", 0)]:
        assert workers_that_fit(FLAVORS, q, flavor) == fit, (q, flavor)
        if fit:
            plan_workers(HEAD, fit, FLAVORS, q, flavor)
        with pytest.raises(QuotaExceeded):
            plan_workers(HEAD, fit + 1, FLAVORS, q, flavor)
