"""What the watchdog on a VM says about itself (its state.json, read over SSH): pure, the UI imports it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tui.core.autostop.policy import human

AT_BOOT = {"cron": "", "no-cron": "; will restart at the next attach: cron is not installed",
           "no-line": "; will restart at the next attach: its @reboot line is not in the crontab (set it again)"}


@dataclass(frozen=True, slots=True)
class AutostopStatus:
    armed: bool  # a config is on the VM
    running: bool  # the watchdog's process lives
    action: str = ""
    idle_s: float = 0.0
    idle_since: float | None = None  # epoch seconds (the VM's clock)
    acts_at: float | None = None
    busy: str = ""  # what kept it busy at its last look ("" when idle)
    warning: str = ""  # the warning it gave (the timer runs out soon)
    acted: str = ""  # what it did ("" until it acted)
    updated: float | None = None  # its last look
    at_boot: str = ""  # "cron": its @reboot line is in the crontab; "no-cron": no crontab; "no-line"; "": not read

    @classmethod
    def parse(cls, armed: bool, running: bool, state_text: str, at_boot: str = "") -> AutostopStatus:
        try:
            data: Any = json.loads(state_text) if state_text.strip() else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        acted = data.get("acted") if isinstance(data.get("acted"), dict) else None

        def num(key: str) -> float | None:
            value = data.get(key)
            return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

        return cls(armed=armed, running=running, action=str(data.get("action") or ""),
                   idle_s=num("idle_s") or 0.0, idle_since=num("idle_since"), acts_at=num("acts_at"),
                   busy=str(data.get("busy") or ""), warning=str(data.get("warning") or ""),
                   acted=f"{acted.get('action')}: {acted.get('result')}" if acted else "", updated=num("updated"),
                   at_boot=at_boot if at_boot in AT_BOOT else "")

    def boot_note(self) -> str:
        """"" where the watchdog starts again at a boot by itself, else why not (a clause to append)."""
        return AT_BOOT.get(self.at_boot, "")

    def line(self, now: float) -> str:
        """One line for people: off, armed and why not idle, or how long until it acts (and, where it will not
        start again at a boot by itself, that it will when the app next attaches)."""
        said = self._line(now)
        return said + self.boot_note() if self.armed and not self.acted else said

    def _line(self, now: float) -> str:
        if not self.armed:
            return "autostop off"
        if self.acted:
            return f"autostop acted ({self.acted})"
        if not self.running:
            return "autostop armed, but its watchdog is not running (set it again to restart it)"
        head = f"autostop: {self.action} after {human(self.idle_s)} idle"
        if self.busy:
            return f"{head}; busy now ({self.busy})"
        if self.acts_at is not None:
            left = max(0.0, self.acts_at - now)
            return f"{head}; acts in {human(round(left))}" + (" — WARNED" if self.warning else "")
        return head

    def to_json(self) -> dict[str, Any]:
        return {"armed": self.armed, "running": self.running, "action": self.action or None,
                "idle_s": self.idle_s or None, "idle_since": self.idle_since, "acts_at": self.acts_at,
                "busy": self.busy or None, "warning": self.warning or None, "acted": self.acted or None,
                "updated": self.updated, "at_boot": self.at_boot or None}
