"""Idle nudges, as the guide's best-practices section advises: resize down → stop (or shelve) the VM → delete it.

Pure functions: the caller supplies the VM's uptime, the idle time of its Jupyter server (last kernel or
terminal activity, from Jupyter's API) and the profile's thresholds; `nudge` says which tier applies and
what to tell the user (what it saves, and the key that does it). Snoozes are kept in `AppState.snoozes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from tui.core.config import IdleSettings


class Tier(StrEnum):
    RESIZE = "resize"
    STOP = "stop"
    SHELVE = "shelve"  # the stop tier, where the profile's cost model says shelving saves more
    DELETE = "delete"


# Tier -> (app action id whose key does it, default key)
ACTIONS: dict[Tier, tuple[str, str]] = {
    Tier.RESIZE: ("resize", "r"),
    Tier.STOP: ("power", "p"),
    Tier.SHELVE: ("shelve", "h"),
    Tier.DELETE: ("delete", "ctrl+d"),
}

_ADVICE = {
    Tier.RESIZE: "resize it to a smaller flavor: it frees cores and RAM for others and costs less "
                 "(you can resize back up any time)",
    Tier.STOP: "stop the VM, like shutting down a computer: its cores and RAM go back to the pool, the disk is kept",
    Tier.SHELVE: "shelve it: nothing runs and its cores and RAM are freed, the disk is kept (unshelve brings it "
                 "back, Jupyter too)",
    Tier.DELETE: "delete it if you will not use it again: it frees its quota and storage for good "
                 "(copy your data off first)",
}


@dataclass(frozen=True, slots=True)
class Nudge:
    tier: Tier
    idle_seconds: float
    key: str
    message: str


def idle_seconds(uptime_s: float | None, jupyter_idle_s: float | None) -> float | None:
    """How long the VM has been unused: Jupyter's idle time when a server runs, else its whole uptime.

    Never longer than the uptime (activity from before a reboot does not count)."""
    if uptime_s is None:
        return None
    if jupyter_idle_s is None:
        return max(0.0, uptime_s)
    return max(0.0, min(jupyter_idle_s, uptime_s))


def tier_for(idle_s: float | None, thresholds: IdleSettings) -> Tier | None:
    """The strongest tier whose threshold `idle_s` has passed."""
    if idle_s is None:
        return None
    hours = idle_s / 3600
    if hours >= thresholds.delete_after_days * 24:
        return Tier.DELETE
    if hours >= thresholds.stop_after_hours:
        return Tier.STOP
    if hours >= thresholds.resize_after_hours:
        return Tier.RESIZE
    return None


def key_for(tier: Tier, keymap: Mapping[str, str] | None = None) -> str:
    """The key that does `tier`'s action, honouring the profile's keymap (first key of a list)."""
    action, default = ACTIONS[tier]
    keys = (keymap or {}).get(action, default)
    return keys.split(",")[0].strip() or default


def nudge(
    uptime_s: float | None,
    jupyter_idle_s: float | None,
    thresholds: IdleSettings,
    *,
    name: str = "this instance",
    keymap: Mapping[str, str] | None = None,
    now: datetime | None = None,
    snoozed_until: datetime | None = None,
    choice: tuple[str, str] = ("", ""),
) -> Nudge | None:
    """The nudge to show for an instance, or None (not idle long enough, or snoozed until after `now`). `choice`:
    (action, "saves 2 SU/h") the cost model picks (`tui.core.shelveplan.nudge_choice`): at the stop tier, shelve
    where that saves more than stopping, and the saving said."""
    if snoozed_until is not None and now is not None and now < snoozed_until:
        return None
    idle = idle_seconds(uptime_s, jupyter_idle_s)
    tier = tier_for(idle, thresholds)
    if tier is None or idle is None:
        return None
    action, saves = choice
    if tier is Tier.STOP and action == "shelve":
        tier = Tier.SHELVE
    saying = f" — it {saves}" if saves and tier in (Tier.STOP, Tier.SHELVE) and action == tier.value else ""
    key = key_for(tier, keymap)
    what = "Jupyter has had no kernel or terminal activity" if jupyter_idle_s is not None else "it has been up"
    import humanize  # here, not at import: the app's first frame loads this module's Tier

    message = (f"{name}: {what} for {humanize.naturaldelta(timedelta(seconds=idle))}. "
               f"Consider: {_ADVICE[tier]}{saying}. Press {key} to do it; or snooze this reminder.")
    return Nudge(tier, idle, key, message)


def snooze_until(now: datetime, hours: float = 24.0) -> datetime:
    """When a snooze made `now` ends (default: a day)."""
    return now + timedelta(hours=hours)
