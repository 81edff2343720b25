"""Small text helpers shared by panes and screens: humanized sizes/times and status colours."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from rich.text import Text

from tui.core.units import ram

if TYPE_CHECKING:
    from tui.core.models import Volume

STATUS_STYLES = {
    "ACTIVE": "bold green",
    "BUILD": "yellow",
    "RESIZE": "yellow",
    "VERIFY_RESIZE": "bold yellow",
    "REBOOT": "yellow",
    "HARD_REBOOT": "yellow",
    "MIGRATING": "yellow",
    "SHUTOFF": "dim",
    "STOPPED": "dim",
    "SHELVED": "bold blue",  # nothing runs; its host still holds it until offloaded
    "SHELVED_OFFLOADED": "blue",  # on no host: no cores or RAM held
    "ERROR": "bold red",
    "DELETED": "dim strike",
}


def status_text(status: str, task_state: str = "") -> Text:
    """The status in its colour; a running task (e.g. "deleting") is shown after it."""
    text = Text(status, style=STATUS_STYLES.get(status, ""))
    if task_state:
        text.append(f" ({task_state})", style="dim italic")
    return text


def mb(ram_mb: int) -> str:
    """RAM in MiB as "2 GiB" / "512 MiB" / "0 B": the core's one unit style (`tui.core.units.ram`)."""
    return ram(ram_mb)


def leave_ram(ram_mb: int) -> str:
    """RAM that would be left, before the word RAM: "2 GiB", or "no" when none would."""
    return "no" if ram_mb <= 0 else mb(ram_mb)


def ago(when: datetime | None, now: datetime) -> str:
    """"3 hours ago"; "" when unknown."""
    if when is None:
        return ""
    import humanize  # on first use: not needed for the first frame

    return humanize.naturaltime(max(now - when, timedelta(0)))


def duration(seconds: float | None) -> str:
    """Uptime as "2 hours"; a dash when not running."""
    if seconds is None:
        return "–"
    import humanize

    return str(humanize.naturaldelta(seconds))


def short_duration(seconds: float | None) -> str:
    """Uptime for narrow table cells: "40 s", "12 min", "3 h", "2 d"; a dash when not running."""
    if seconds is None:
        return "–"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def short_age(when: datetime | None, now: datetime) -> str:
    """How long since `when`, for narrow table cells ("12 min"); "" when unknown."""
    if when is None:
        return ""
    return short_duration(max((now - when).total_seconds(), 0.0))


def limit(value: int) -> str:
    """A quota limit; -1 (unlimited) as ∞."""
    return "∞" if value < 0 else str(value)


def volume_label(volume: Volume) -> str:
    """A volume's name; unnamed boot volumes (named by their id) are just "boot volume"."""
    if volume.name and volume.name != volume.id:
        return volume.name
    return "boot volume" if volume.bootable else f"volume {volume.id[:8]}"
