"""Nova helpers shared by the compute modules: errors, microversions, response headers, states, quota."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tui.sandbox import data
from tui.sandbox.router import HTTPError, Request, Response
from tui.sandbox.state import Record, now_iso

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox

MIN_VERSION = (2, 1)
MAX_VERSION = (2, 96)
MAX_LIMIT = 1000  # osapi_max_limit
# status -> (vm_state, power_state)
STATES = {
    "BUILD": ("building", 0),
    "ACTIVE": ("active", 1),
    "SHUTOFF": ("stopped", 4),
    "ERROR": ("error", 0),
    "REBOOT": ("active", 1),
    "HARD_REBOOT": ("active", 1),
    "RESIZE": ("active", 1),
    "VERIFY_RESIZE": ("resized", 1),
    "REVERT_RESIZE": ("resized", 1),
    "SHELVED": ("shelved", 4),
    "SHELVED_OFFLOADED": ("shelved_offloaded", 4),  # the power state read when it was offloaded (shut down)
}

Version = tuple[int, int]


def nova_error(status: int, message: str) -> HTTPError:
    key = {400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest", 413: "overLimit"}.get(
        status, "computeFault"
    )
    return HTTPError(status, {key: {"code": status, "message": message}})


def set_status(srv: Record, status: str, task: str | None = None) -> None:
    srv["status"] = status
    srv["vm_state"], srv["power_state"] = STATES[status]
    srv["task_state"] = task
    srv["updated"] = now_iso()


def microversion(req: Request) -> Version:
    raw = req.headers.get("openstack-api-version", "")
    value = (
        raw.split()[1]
        if raw.startswith("compute ") and len(raw.split()) > 1
        else req.headers.get("x-openstack-nova-api-version", "")
    )
    if not value:
        return MIN_VERSION
    if value == "latest":
        return MAX_VERSION
    m = re.fullmatch(r"(\d+)\.(\d+)", value.strip())
    if not m:
        raise nova_error(400, f"API Version String {value} is of invalid format. Must be of format MajorNum.MinorNum.")
    got = (int(m[1]), int(m[2]))
    if not MIN_VERSION <= got <= MAX_VERSION:
        raise HTTPError(
            406,
            {
                "computeFault": {
                    "code": 406,
                    "message": f"Version {value} is not supported by the API. Minimum is 2.1 and maximum is 2.96.",
                }
            },
        )
    return got


def ok(status: int, body: Any, mv: Version) -> Response:
    """A Nova response carrying the microversion it was rendered for."""
    v = f"{mv[0]}.{mv[1]}"
    return Response(
        status,
        body,
        {
            "OpenStack-API-Version": f"compute {v}",
            "X-OpenStack-Nova-API-Version": v,
            "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
        },
    )


def links(sb: Sandbox, kind: str, rid: str) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": f"{sb.url}/compute/v2.1/{kind}/{rid}"},
        {"rel": "bookmark", "href": f"{sb.url}/compute/{kind}/{rid}"},
    ]


def get_server(sb: Sandbox, req: Request) -> Record:
    """The server named by the route's `id`, or Nova's 404. Call under the lock."""
    srv = sb.state.table("servers").get(req.params["id"])
    if srv is None:
        raise nova_error(404, f"Instance {req.params['id']} could not be found.")
    return srv


def usage(sb: Sandbox) -> dict[str, int]:
    """Instances, cores and RAM in use. An offloaded server holds an instance but no cores or RAM (as where Nova
    counts them from placement)."""
    servers = list(sb.state.table("servers").values())
    flavors = [data.FLAVORS[s["flavor_id"]] for s in servers if s["status"] != "SHELVED_OFFLOADED"]
    return {"instances": len(servers), "cores": sum(f["vcpus"] for f in flavors), "ram": sum(f["ram"] for f in flavors)}


def quota_check(sb: Sandbox, wanted: dict[str, int]) -> None:
    """Nova's 403 when `wanted` (instances/cores/ram deltas) does not fit. Call under the lock."""
    q = sb.quota()
    limits = {"instances": q["instances"], "cores": q["cores"], "ram": q["ram_mb"]}
    used = usage(sb)
    overs = sorted(r for r, n in wanted.items() if n > 0 and 0 <= limits[r] < used[r] + n)
    if overs:

        def join(values: list[Any]) -> str:
            return ", ".join(str(v) for v in values)

        raise nova_error(
            403,
            f"Quota exceeded for {join(overs)}: Requested {join([wanted[r] for r in overs])}, "
            f"but already used {join([used[r] for r in overs])} of "
            f"{join([limits[r] for r in overs])} {join(overs)}",
        )
