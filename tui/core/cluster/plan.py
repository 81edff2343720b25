"""Plan the worker instances of a Dask cluster before any API call: names, flavor, quota.

Workers are named after the head (`HEAD-w1 … HEAD-wN`, numbering continued when scaling up), default to the
smallest `c1.*` flavor (the guide: compute-heavy flavors for many small parallel jobs) and are refused up front,
with the numbers, when N of them do not fit the remaining quota.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from tui.core.cloud.base import InvalidInput, LaunchSpec, NotFound, QuotaExceeded
from tui.core.cloud.launch import RECOMMENDED_VOLUME_GB, check_name
from tui.core.models import Family, Flavor, Instance, Quota
from tui.core.units import left, ram

MAX_WORKERS = 64


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    head: str
    names: tuple[str, ...]
    flavor: Flavor
    volume_gb: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    def specs(self, *, image: str, network: str, key_name: str,
              security_groups: tuple[str, ...] = ("default",),
              delete_volume_on_termination: bool = True) -> list[LaunchSpec]:
        """One LaunchSpec per worker (workers are disposable: their boot volumes go with them by default)."""
        return [LaunchSpec(name=name, image=image, flavor=self.flavor.id, key_name=key_name, network=network,
                           volume_size_gb=self.volume_gb, delete_volume_on_termination=delete_volume_on_termination,
                           security_groups=security_groups)
                for name in self.names]


def worker_prefix(head: str) -> str:
    return f"{head}-w"


def worker_numbers(head: str, names: Iterable[str]) -> list[int]:
    """The numbers N of existing `HEAD-wN` names."""
    pattern = re.compile(re.escape(worker_prefix(head)) + r"(\d+)$")
    return sorted(int(m.group(1)) for n in names if (m := pattern.match(n)))


def heads_named(names: Iterable[str]) -> set[str]:
    """The HEAD of every `HEAD-wN` name: one pass (asking `worker_numbers` of each instance is quadratic — half a
    second with 1,000 servers)."""
    return {m.group(1) for n in names if (m := WORKER_NAME.match(n))}


WORKER_NAME = re.compile(r"(.+)-w\d+$")


def worker_names(head: str, n: int, existing: Iterable[str] = ()) -> tuple[str, ...]:
    start = max(worker_numbers(head, existing), default=0) + 1
    return tuple(f"{worker_prefix(head)}{i}" for i in range(start, start + n))


def capacity(flavor: Flavor, quota: Quota, volume_gb: int) -> int:
    """How many instances of `flavor` (each with a `volume_gb` boot volume) the remaining quota holds."""
    limits = [quota.instances_free]
    if flavor.ram_mb:
        limits.append(quota.ram_mb_free // flavor.ram_mb)
    if flavor.vcpus:
        limits.append(quota.cores_free // flavor.vcpus)
    if volume_gb:
        limits.append(quota.gigabytes_free // volume_gb)
    return max(0, min(limits))


def misfit(flavor: Flavor, n: int, quota: Quota, volume_gb: int) -> list[str]:
    """Why `n` instances of `flavor` do not fit, with the numbers; empty when they do."""
    reasons = []
    if n * flavor.ram_mb > quota.ram_mb_free:
        reasons.append(f"need {ram(n * flavor.ram_mb)} RAM, {left(quota.ram_mb_free, ram(quota.ram_mb_free))}")
    if n * flavor.vcpus > quota.cores_free:
        reasons.append(f"need {n * flavor.vcpus} cores, {left(quota.cores_free)}")
    if n > quota.instances_free:
        reasons.append(f"need {n} instances, {left(quota.instances_free)}")
    if volume_gb and n * volume_gb > quota.gigabytes_free:
        free = quota.gigabytes_free
        reasons.append(f"need {n * volume_gb} GB of volumes, {left(free, f'{free} GB')}")
    return reasons


def _refuse(flavor: Flavor, n: int, quota: Quota, volume_gb: int) -> QuotaExceeded:
    fit = capacity(flavor, quota, volume_gb)
    reasons = "; ".join(misfit(flavor, n, quota, volume_gb))
    hint = (f"at most {fit} worker{'s' if fit != 1 else ''} of {flavor.name} fit" if fit
            else "stop or delete an instance, resize one down, or ask for more quota")
    what = f"{n} worker{'s' if n != 1 else ''} of {flavor.name} {'do' if n != 1 else 'does'} not fit"
    return QuotaExceeded(f"{what} the remaining quota: {reasons}", hint)


def plan_workers(head: Instance, n: int, flavors: list[Flavor], quota: Quota, flavor_name: str = "", *,
                 existing: Iterable[str] = (), volume_gb: int = RECOMMENDED_VOLUME_GB) -> WorkerPlan:
    """Plan `n` new workers for the cluster headed by `head`. `existing` = names of the project's instances
    (numbering continues after the highest `HEAD-wN`). Raises InvalidInput, NotFound or QuotaExceeded."""
    if n < 1 or n > MAX_WORKERS:
        raise InvalidInput(f"{n} workers requested", f"ask for 1 to {MAX_WORKERS} workers")
    names = worker_names(head.name, n, existing)
    for name in names:
        check_name(name)
    taken = set(existing) & set(names)
    if taken:
        raise InvalidInput(f"instance names already taken: {', '.join(sorted(taken))}", "")
    notes: list[str] = []
    if flavor_name:
        chosen = next((f for f in flavors if flavor_name in (f.id, f.name)), None)
        if chosen is None:
            raise NotFound(f"flavor {flavor_name!r} not found",
                           "available flavors: " + (", ".join(f.name for f in flavors) or "none"))
        if misfit(chosen, n, quota, volume_gb):
            raise _refuse(chosen, n, quota, volume_gb)
    else:
        compute = sorted((f for f in flavors if f.family is Family.COMPUTE), key=_size)
        pool = compute or sorted(flavors, key=_size)
        if not pool:
            raise NotFound("the cloud offers no flavors", "")
        fitting = [f for f in pool if not misfit(f, n, quota, volume_gb)]
        if not fitting:
            raise _refuse(pool[0], n, quota, volume_gb)
        chosen = fitting[0]
        why = "the smallest c1.* that fits: many small parallel jobs" if compute else "the smallest that fits"
        notes.append(f"flavor: {chosen.name} ({chosen.vcpus} vCPU, {ram(chosen.ram_mb)} RAM; {why})")
    notes.append(f"workers: {', '.join(names)}")
    return WorkerPlan(head=head.name, names=names, flavor=chosen, volume_gb=volume_gb, notes=tuple(notes))


def workers_that_fit(flavors: list[Flavor], quota: Quota, flavor_name: str = "",
                     volume_gb: int = RECOMMENDED_VOLUME_GB) -> int:
    """How many workers of the flavor `plan_workers` would choose the remaining quota holds (0: none)."""
    if flavor_name:
        pool = [f for f in flavors if flavor_name in (f.id, f.name)]
    else:
        pool = sorted((f for f in flavors if f.family is Family.COMPUTE), key=_size) or sorted(flavors, key=_size)
    return min(max((capacity(f, quota, volume_gb) for f in pool), default=0), MAX_WORKERS)


def _size(f: Flavor) -> tuple[int, int, str]:
    return (f.ram_mb, f.vcpus, f.name)
