"""The app's autostop (issue 23): the owner of what the app knows of each instance's watchdog and of its keys —
`u` sets or clears it (a dialog), `w` keeps the VM (resets the timer); a warning read from the VM (when the app
refreshes) is shown once, with the key that keeps it. The App only delegates to it."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tui.core.autostop.policy import human

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel

    from tui.core.api import Engine
    from tui.core.autostop.status import AutostopStatus
    from tui.core.config import Settings
    from tui.core.events import AutostopState
    from tui.core.models import Instance

Job = Callable[["Engine", "Instance"], Awaitable[str | None]]


class AutostopOwner:
    """`run_remote(action, job)` runs a job on the selected instance (its text or error is notified); `ask(name,
    now, idle, action, then)` opens the dialog; `notify(text, title, severity)` tells the user; `name_of(id)`."""

    def __init__(self, settings: Settings, run_remote: Callable[[str, Job], None],
                 ask: Callable[[str, str, str, str, Callable[[Any], None]], None],
                 notify: Callable[[str, str, SeverityLevel], None], name_of: Callable[[str], str]) -> None:
        self.settings = settings
        self.run_remote = run_remote
        self.ask = ask
        self.notify = notify
        self.name_of = name_of
        self.statuses: dict[str, AutostopStatus] = {}
        self._shown: dict[str, str] = {}  # instance id -> the warning (or action) already shown

    def set_or_clear(self, inst: Instance | None) -> None:
        """`u`: the dialog, prefilled with the instance's autostop (else the profile's), then set it or turn it off."""
        if inst is None:
            return
        now = self.statuses.get(inst.id)
        profile = self.settings.autostop
        idle = human(now.idle_s) if now and now.armed and now.idle_s else (
            profile.idle if profile.idle != "off" else "60m")
        action = now.action if now and now.armed and now.action else profile.action
        said = now.line(time.time()) if now else "not read yet"

        def then(choice: Any) -> None:
            if choice is None:
                return
            if choice[0] == "off":
                self.run_remote("autostop", self._off)
            else:
                self.run_remote("autostop", self._setter(choice[1], choice[2]))

        self.ask(inst.name, said, idle, action, then)

    @staticmethod
    def _setter(idle: str, action: str) -> Job:
        async def job(engine: Engine, inst: Instance) -> str | None:
            policy = engine.autostop.policy(idle, action)  # a bad value: one line (CloudError), nothing changed
            if policy is None:
                status = await engine.autostop.off(inst)
                return f"Autostop off ({status.line(time.time())})."
            status = await engine.autostop.set(inst, policy)
            return f"Autostop set: {policy.describe()}{status.boot_note()}."
        return job

    @staticmethod
    async def _off(engine: Engine, inst: Instance) -> str | None:
        await engine.autostop.off(inst)
        return f"Autostop off on {inst.name}: it keeps running until you stop it."

    def keep(self) -> None:
        """`w`: reset the timer of the selected instance's watchdog."""
        async def job(engine: Engine, inst: Instance) -> str | None:
            status = await engine.autostop.keep(inst)
            self._shown.pop(inst.id, None)
            return f"Kept {inst.name}: {status.line(time.time())}."

        self.run_remote("keep", job)

    def on_state(self, event: AutostopState) -> None:
        """A watchdog's state read from its VM: its warning (or what it did) is shown once."""
        status = event.status
        self.statuses[event.instance_id] = status
        news = status.acted or status.warning
        if not news or self._shown.get(event.instance_id) == news:
            return
        self._shown[event.instance_id] = news
        name = self.name_of(event.instance_id)
        if status.acted:
            self.notify(f"The watchdog on {name} acted: {status.acted}.", f"Autostop · {name}", "warning")
        else:
            left = human(round(max(0.0, (status.acts_at or time.time()) - time.time())))
            self.notify(f"{name} is idle: it will {status.action} in {left}. Press w to keep it.",
                        f"Autostop · {name}", "warning")
