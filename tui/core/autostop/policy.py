"""An autostop policy: how long idle, what to do, the thresholds (`profile.py` reads the profile's).

Durations are written `90s`, `45m`, `2h`, `1d` (or a bare number of seconds); `off` means no autostop. The shortest
idle period is MIN_IDLE_S (a test lowers it to seconds: the only test-only threshold).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from tui.core.errors import BadInput

ACTIONS = ("stop", "shelve")
MIN_IDLE_S = 300.0  # five minutes: shorter would stop a VM between two cells
MIN_EVERY_S = 10.0  # the watchdog's period: a look costs a few ms of CPU
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*")
DURATION_FIX = "a duration like 90s, 45m, 2h or 1d"


def parse_duration(text: str) -> float | None:
    """Seconds of `60m`-style text; None when it is not one."""
    m = _DURATION.fullmatch(str(text))
    if m is None:
        return None
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def is_duration(text: str) -> bool:
    return parse_duration(text) is not None


def human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


class PolicyError(BadInput, ValueError):
    """A bad value: one line naming the option and the fix."""


@dataclass(frozen=True, slots=True)
class Policy:
    idle_s: float
    action: str = "stop"
    cpu_percent: float = 5.0
    warn_s: float = 300.0
    every_s: float = 60.0

    def check(self, min_idle_s: float | None = None, min_every_s: float | None = None) -> Policy:
        low = MIN_IDLE_S if min_idle_s is None else min_idle_s
        every = MIN_EVERY_S if min_every_s is None else min_every_s
        if self.action not in ACTIONS:
            raise PolicyError(f"action {self.action!r}: expected one of {', '.join(ACTIONS)}")
        if self.idle_s < low:
            raise PolicyError(f"idle {human(self.idle_s)}: expected at least {human(low)} (e.g. 60m)")
        if not 0 < self.cpu_percent <= 100:
            raise PolicyError(f"cpu_percent {self.cpu_percent:g}: expected a percentage above 0, at most 100")
        if not 0 <= self.warn_s < self.idle_s:
            raise PolicyError(f"warn_before {human(self.warn_s)}: expected less than the idle period "
                              f"{human(self.idle_s)}")
        if self.every_s < every:
            raise PolicyError(f"check_every {human(self.every_s)}: expected at least {human(every)}")
        return self

    def describe(self) -> str:
        return (f"{self.action} after {human(self.idle_s)} idle (CPU below {self.cpu_percent:g}%, warned "
                f"{human(self.warn_s)} before, checked every {human(self.every_s)})")

    def config_json(self, server_id: str, keep_hint: str, jupyter_log: str) -> str:
        """The watchdog's config.json (no secret: a shelve's credential is a file of its own)."""
        return json.dumps({"idle_s": self.idle_s, "action": self.action, "cpu_percent": self.cpu_percent,
                           "warn_s": self.warn_s, "every_s": self.every_s, "server_id": server_id,
                           "keep_hint": keep_hint, "jupyter_log": jupyter_log}, sort_keys=True)
