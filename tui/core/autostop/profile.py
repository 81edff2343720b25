"""The profile's autostop (`autostop:` of `tui.core.config`) as a policy, with the command line's values on top."""

from __future__ import annotations

from tui.core.autostop.policy import DURATION_FIX, Policy, PolicyError, parse_duration
from tui.core.config import Settings


def from_settings(settings: Settings, idle: str | None = None, action: str | None = None) -> Policy | None:
    """The profile's policy (None when `autostop.idle` is off), with the command line's `idle`/`action` on top.
    PolicyError on a bad value."""
    a = settings.autostop
    idle_text = a.idle if idle is None else idle
    if idle_text.strip().lower() == "off":
        return None
    values = {"idle": idle_text, "warn_before": a.warn_before, "check_every": a.check_every}
    seconds = {}
    for key, text in values.items():
        parsed = parse_duration(text)
        if parsed is None:
            raise PolicyError(f"{key} {text!r}: expected {DURATION_FIX}")
        seconds[key] = parsed
    warn = min(seconds["warn_before"], seconds["idle"] / 2)
    return Policy(seconds["idle"], action or a.action, a.cpu_percent, warn, seconds["check_every"]).check()
