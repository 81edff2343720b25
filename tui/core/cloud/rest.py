"""What a poll reads — servers, limits, volumes — as plain JSON, through any `Get` (service, path) -> body.

Two transports use it: `OpenStackCloud` (keystoneauth's session, openstacksdk's endpoints) and the app's first
listing (`tui.core.cloud.quick`: the standard library and the cached token, before openstacksdk is imported).
openstacksdk's resources cost ~7 ms a server to build; the JSON is the same data.

`ServerWatch` makes repeated polls cheap: after one full listing it asks Nova only for what changed since
(`changes-since`, which Nova answers with the changed servers, deleted ones included as DELETED), and lists
everything again now and then (`FULL_EVERY`) and whenever asked to.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tui.core.cloud.base import CloudError
from tui.core.models import Instance, Quota, Volume

Get = Callable[[str, str], dict[str, Any]]  # (service: "compute" | "block_storage", path) -> JSON body

PAGE = 1000
FULL_EVERY = 12  # a full listing on every 12th poll (a minute at the default 5 s): catches what changes-since cannot
SKEW_S = 5.0  # changes-since reaches this far behind the time of the last listing (clock skew, slow commits)


def as_int(value: Any, default: int = 0) -> int:
    """An integer from JSON, or `default` when it is none."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def as_time(value: Any) -> datetime | None:
    """An OpenStack timestamp (with or without a zone; UTC when none), or None."""
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def next_link(links: Any, anchor: str) -> str | None:
    """The `next` link of a paged listing, relative to the service's endpoint (from `anchor`, e.g. "/servers")."""
    for link in links or []:
        if link.get("rel") == "next" and link.get("href"):
            href = str(link["href"])
            return href[href.index(anchor):] if anchor in href else href
    return None


def paged(get: Get, service: str, path: str, key: str) -> list[dict[str, Any]]:
    """Every item of a paged listing (`limit` = PAGE, following `{key}_links`)."""
    items: list[dict[str, Any]] = []
    url: str | None = f"{path}{'&' if '?' in path else '?'}limit={PAGE}"
    anchor = "/" + key
    while url:
        body = get(service, url)
        page = body.get(key) or []
        items.extend(page)
        url = next_link(body.get(f"{key}_links"), anchor) if len(page) >= PAGE else None
    return items


def servers(get: Get, since: datetime | None = None) -> list[dict[str, Any]]:
    """All servers as Nova's JSON; with `since`, only those changed since then (deleted ones as "DELETED")."""
    query = f"?changes-since={since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}" if since else ""
    return paged(get, "compute", f"/servers/detail{query}", "servers")


def volumes(get: Get) -> list[Volume]:
    return [to_volume(v) for v in paged(get, "block_storage", "/volumes/detail", "volumes")]


def to_volume(v: dict[str, Any]) -> Volume:
    attachments = v.get("attachments") or []
    return Volume(
        id=v["id"], name=v.get("name") or v["id"], size_gb=as_int(v.get("size")), status=v.get("status") or "",
        attached_to=tuple(a.get("server_id", "") for a in attachments if a.get("server_id")),
        device=next((a.get("device", "") for a in attachments if a.get("device")), ""),
        bootable=str(v.get("bootable")).lower() == "true", created_at=as_time(v.get("created_at")),
    )


def quota(get: Get) -> Quota:
    """Nova's absolute limits, and Cinder's (counted from the volumes on an old Cinder without /limits)."""
    a = (get("compute", "/limits").get("limits") or {}).get("absolute") or {}
    volumes_limit, volumes_used, gb_limit, gb_used = -1, 0, -1, 0
    try:
        v = (get("block_storage", "/limits").get("limits") or {}).get("absolute") or {}
        volumes_limit, volumes_used = as_int(v.get("maxTotalVolumes"), -1), as_int(v.get("totalVolumesUsed"))
        gb_limit, gb_used = as_int(v.get("maxTotalVolumeGigabytes"), -1), as_int(v.get("totalGigabytesUsed"))
    except CloudError as exc:
        if exc.status not in (404, 501):
            raise
        vols = volumes(get)
        volumes_used, gb_used = len(vols), sum(x.size_gb for x in vols)
    return Quota(
        ram_mb_limit=as_int(a.get("maxTotalRAMSize"), -1), ram_mb_used=as_int(a.get("totalRAMUsed")),
        cores_limit=as_int(a.get("maxTotalCores"), -1), cores_used=as_int(a.get("totalCoresUsed")),
        instances_limit=as_int(a.get("maxTotalInstances"), -1), instances_used=as_int(a.get("totalInstancesUsed")),
        keypairs_limit=as_int(a.get("maxTotalKeypairs"), -1),
        volumes_limit=volumes_limit, volumes_used=volumes_used, gigabytes_limit=gb_limit, gigabytes_used=gb_used,
    )


class ServerWatch:
    """The project's servers, kept current with `changes-since` between full listings.

    `instances(get)` returns (every instance, whether anything changed since the last call). The first call, every
    FULL_EVERY-th and any with `full=True` list everything; the others ask only for servers changed since the
    previous listing was answered — by the cloud's clock (`clock`: the HTTP Date of the last answer), less SKEW_S
    for changes committed late — usually none, a few hundred bytes however many servers there are."""

    def __init__(self, convert: Callable[[dict[str, Any]], Instance],
                 clock: Callable[[], datetime | None] = lambda: None) -> None:
        self.convert = convert
        self.clock = clock
        self.known: dict[str, Instance] = {}
        self.since: datetime | None = None
        self.calls = 0

    def instances(self, get: Get, full: bool = False) -> tuple[list[Instance], bool]:
        self.calls += 1
        if full or self.since is None or self.calls % FULL_EVERY == 0:
            listed = servers(get)
            fresh = {i.id: i for i in map(self.convert, listed)}
            changed = fresh != self.known
            self.known = fresh
        else:
            listed = servers(get, self.since)
            changed = False
            for s in listed:
                if str(s.get("status", "")).upper() in ("DELETED", "SOFT_DELETED"):
                    changed |= self.known.pop(s["id"], None) is not None
                    continue
                inst = self.convert(s)
                changed |= self.known.get(inst.id) != inst
                self.known[inst.id] = inst
        self.since = (self.clock() or datetime.now(UTC)) - timedelta(seconds=SKEW_S)
        return list(self.known.values()), changed
