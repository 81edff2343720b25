"""The scheduler's state, read from its dashboard's HTTP server (127.0.0.1 on the head) — the laptop has no dask.

Measured on distributed 2026.8.0: `/json/identity.json` lists every worker (address → name, nthreads,
memory_limit, last_seen, status, metrics: memory, task_counts, …); `/json/counts.json` has totals; `/metrics` is
Prometheus text with per-state worker counts but no per-worker rows; `/status` answers 200 (the Bokeh dashboard,
or a page asking for bokeh when it is not installed); `/health` answers `ok`. None of them needs TLS: the dashboard
listens on the head's loopback only and is reached through SSH (a direct-tcpip channel or a tunnel).
"""

from __future__ import annotations

import json
import re
from typing import Any

from tui.core.cluster.commands import IDENTITY_ROUTE
from tui.core.errors import RetryLater
from tui.core.jupyter.http import NoReply, Opener, request
from tui.core.models import ClusterStatus, WorkerRow

__all__ = ["ClusterStatus", "StatusError", "WorkerRow", "fetch_status", "parse_identity", "parse_prometheus"]

IDENTITY_PATH = "/json/identity.json"  # answers HTTP 500 while workers compute: see commands.IDENTITY_ROUTE
# Worker-side task states that count as "processing" (assigned, not yet finished).
_PROCESSING_STATES = ("executing", "ready", "constrained", "long-running", "waiting", "fetch", "flight")


class StatusError(RetryLater):
    """The scheduler's dashboard did not answer (not running yet, or gone) or answered nonsense."""


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def parse_identity(data: Any, dashboard_url: str = "") -> ClusterStatus:
    """`/json/identity.json` (a dict) → ClusterStatus; workers sorted by name. ValueError when it is not one."""
    if not isinstance(data, dict) or data.get("type") != "Scheduler":
        raise ValueError("not a dask scheduler identity")
    rows = []
    workers = data.get("workers") or {}
    for address, info in workers.items():
        if not isinstance(info, dict):
            continue
        metrics = info.get("metrics") or {}
        counts = metrics.get("task_counts") or {}
        rows.append(WorkerRow(
            name=str(info.get("name", address)),
            address=str(address),
            status=str(info.get("status", "")),
            threads=_int(info.get("nthreads")),
            memory_used=_int(metrics.get("memory")),
            memory_limit=_int(info.get("memory_limit")),
            processing=sum(_int(counts.get(s)) for s in _PROCESSING_STATES) if isinstance(counts, dict) else 0,
            last_seen=float(info.get("last_seen") or 0.0),
        ))
    rows.sort(key=lambda r: _natural(r.name))
    return ClusterStatus(scheduler=str(data.get("address", "")), dashboard_url=dashboard_url,
                         workers=tuple(rows), started=float(data.get("started") or 0.0))


def _natural(name: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def parse_prometheus(text: str) -> dict[str, float]:
    """Prometheus text → {"metric{labels}": value} (comments skipped), e.g. `dask_scheduler_workers{state="idle"}`."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            out[key] = float(value)
        except ValueError:
            continue
    return out


async def fetch_status(opener: Opener, dashboard_port: int, *, timeout: float = 5.0) -> ClusterStatus:
    """GET the scheduler's identity through `opener` (an SSH channel to the head's 127.0.0.1:dashboard_port, or a
    local tunnel port): at IDENTITY_ROUTE (the app's preload, which answers while the cluster computes), else — a
    scheduler started by an older version — at /json/identity.json. StatusError when nothing answers or the answer
    is not a scheduler's."""
    path = IDENTITY_ROUTE
    try:
        resp = await request(opener, "GET", path, timeout=timeout)
        if resp.status == 404:
            path = IDENTITY_PATH
            resp = await request(opener, "GET", path, timeout=timeout)
    except NoReply as exc:
        raise StatusError(str(exc)) from exc
    if resp.status != 200:
        raise StatusError(f"GET {path}: HTTP {resp.status}")
    try:
        return parse_identity(json.loads(resp.body.decode("utf-8")), f"http://127.0.0.1:{dashboard_port}/status")
    except (ValueError, UnicodeDecodeError) as exc:
        raise StatusError(f"GET {path}: {exc}") from exc
