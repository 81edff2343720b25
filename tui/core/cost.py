"""What the instances cost, by the profile's cost model of the cloud (`CostModel`): pure arithmetic on models.

An instance's rate per hour is its vCPUs × the rate per vCPU-hour of its flavor × the factor of its state (a state
the model does not list costs the full rate). The burn rate is the sum; each instance's share is its part of it;
what stopping or shelving one would save is its rate now less its rate in that state. `best_action` picks the
action that saves most — stop where that saves as much as shelving (it comes back faster), else shelve.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Literal

from tui.core.config import CostModel
from tui.core.models import Instance

Action = Literal["stop", "shelve", ""]
STOPPABLE = ("ACTIVE",)  # what stop applies to
SHELVABLE = ("ACTIVE", "SHUTOFF")  # what shelve applies to (Nova: also PAUSED, SUSPENDED)
_EPSILON = 1e-9


def vcpu_rate(model: CostModel, flavor: str) -> float:
    """The rate per vCPU-hour of `flavor`: its own (name, else the first matching pattern), else the model's."""
    if flavor in model.per_flavor:
        return model.per_flavor[flavor]
    for pattern, rate in model.per_flavor.items():
        if fnmatch.fnmatchcase(flavor, pattern):
            return rate
    return model.per_vcpu_hour


def factor(model: CostModel, status: str) -> float:
    return model.state_factors.get(status, 1.0) if status != "DELETED" else 0.0


def rate(model: CostModel, inst: Instance, status: str | None = None) -> float:
    """Per hour, in `status` (default: the instance's own)."""
    return inst.vcpus * vcpu_rate(model, inst.flavor_name) * factor(model, status or inst.status)


def saving(model: CostModel, inst: Instance, action: Action) -> float:
    """Per hour saved by `action` (0 when it does not apply to the instance's state or saves nothing)."""
    target = {"stop": ("SHUTOFF", STOPPABLE), "shelve": ("SHELVED_OFFLOADED", SHELVABLE)}.get(action)
    if target is None or inst.status not in target[1]:
        return 0.0
    return max(0.0, rate(model, inst) - rate(model, inst, target[0]))


def best_action(model: CostModel, inst: Instance) -> tuple[Action, float]:
    """The action that saves most per hour and the saving: stop where it saves as much as shelving, else shelve;
    ("", 0) when neither saves anything."""
    stop, shelve = saving(model, inst, "stop"), saving(model, inst, "shelve")
    if stop > _EPSILON and stop + _EPSILON >= shelve:
        return "stop", stop
    if shelve > _EPSILON:
        return "shelve", shelve
    return "", 0.0


@dataclass(frozen=True, slots=True)
class InstanceCost:
    """One instance's part of the burn rate, and what stopping or shelving it would save (per hour)."""

    id: str
    name: str
    status: str
    flavor: str
    vcpus: int
    rate: float
    share: float  # of the burn rate, 0-1
    stop_saves: float
    shelve_saves: float
    best: Action


@dataclass(frozen=True, slots=True)
class CostReport:
    unit: str
    burn_rate: float  # per hour, every instance now
    instances: tuple[InstanceCost, ...]

    @property
    def could_save(self) -> float:
        """Per hour, were each instance given its best action."""
        return sum(max(i.stop_saves, i.shelve_saves) for i in self.instances)


def report(model: CostModel, instances: list[Instance] | tuple[Instance, ...]) -> CostReport:
    rates = [(i, rate(model, i)) for i in instances]
    total = sum(r for _, r in rates)
    rows = tuple(
        InstanceCost(i.id, i.name, i.status, i.flavor_name, i.vcpus, r, r / total if total > 0 else 0.0,
                     saving(model, i, "stop"), saving(model, i, "shelve"), best_action(model, i)[0])
        for i, r in sorted(rates, key=lambda ir: (-ir[1], ir[0].name))
    )
    return CostReport(model.unit, total, rows)


def amount(value: float, unit: str) -> str:
    """`3.5 SU`, `$0.12`, `12 core-hours`: at most two decimals, no trailing zeros."""
    text = f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
    return f"{unit}{text}" if unit in ("$", "€", "£") else f"{text} {unit}"


def per_hour(value: float, unit: str) -> str:
    return f"{amount(value, unit)}/h"


def describe(report: CostReport, instance_id: str) -> str:
    """One instance's cost in a line: `2 SU/h now, 67% of the burn rate (3 SU/h); shelving saves 2 SU/h, stopping
    1 SU/h`; "" when the report does not have it."""
    row = next((i for i in report.instances if i.id == instance_id), None)
    if row is None:
        return ""
    unit = report.unit
    text = f"{per_hour(row.rate, unit)} now, {row.share:.0%} of the burn rate ({per_hour(report.burn_rate, unit)})"
    saves = [f"{verb} saves {per_hour(value, unit)}" for verb, value in
             (("shelving", row.shelve_saves), ("stopping", row.stop_saves)) if value > 0]
    return text + ("; " + ", ".join(saves) if saves else "")
