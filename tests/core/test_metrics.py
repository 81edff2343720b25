"""`parse_metrics`: `cat /proc/loadavg /proc/meminfo` → Metrics (load per vCPU, memory in use)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tui.core.events import Metrics
from tui.core.manager import parse_metrics

LOADAVG = "3.00 1.50 0.75 2/345 6789\n"
MEMINFO = """MemTotal:        8000000 kB
MemFree:          500000 kB
MemAvailable:    2000000 kB
Buffers:          100000 kB
Cached:          1200000 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
"""


def test_load_per_vcpu_and_memory_in_use() -> None:
    assert parse_metrics("i-1", LOADAVG + MEMINFO, 4) == Metrics("i-1", 0.75, 75.0)
    assert parse_metrics("i-1", LOADAVG + MEMINFO, 1) == Metrics("i-1", 3.0, 75.0)  # 1.0 = every core busy


def test_rounding() -> None:
    text = "0.33 0 0 1/1 1\nMemTotal: 3 kB\nMemAvailable: 2 kB\n"
    assert parse_metrics("i", text, 3) == Metrics("i", 0.11, 33.3)


@pytest.mark.parametrize("text", [
    "",
    LOADAVG,  # no meminfo
    MEMINFO,  # no loadavg first
    LOADAVG + MEMINFO.replace("MemAvailable", "MemAvail"),  # a kernel without MemAvailable
    "garbage\n" + MEMINFO,
    LOADAVG + "MemTotal: lots kB\nMemAvailable: 1 kB\n",
])
def test_missing_or_garbled_is_none(text: str) -> None:
    assert parse_metrics("i", text, 2) is None


def test_zero_total_memory_is_zero_percent() -> None:
    assert parse_metrics("i", "0.5 0 0 1/1 1\nMemTotal: 0 kB\nMemAvailable: 0 kB\n", 1) == Metrics("i", 0.5, 0.0)


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="needs Linux /proc")
def test_this_machines_proc() -> None:
    text = Path("/proc/loadavg").read_text() + Path("/proc/meminfo").read_text()
    m = parse_metrics("here", text, os.cpu_count() or 1)
    assert m is not None and m.load1 >= 0 and 0 < m.mem_used_pct < 100
