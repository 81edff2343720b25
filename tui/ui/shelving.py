"""The `h` key: shelve the selected instance (ACTIVE or SHUTOFF), or unshelve it when shelved — an owner object the
App delegates to. Shelving asks first, with the core's words for what it ends (`ShelvePlan.text`); progress (each
status and task state) comes as short notifications; the result or the refusal (a quota one with the numbers) as
the app's remote results do."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.screen import Screen

    from tui.core.api import Engine
    from tui.core.models import Instance

Job = Callable[["Engine", "Instance"], Awaitable[str | None]]


class Shelver:
    """Shelve and unshelve from the app. Given narrow callables: the selected instance, a runner of remote jobs
    (one per action and instance, errors shown), a dialog to await, a notifier, and a refresh of the cloud."""

    def __init__(self, selected: Callable[[], Instance | None], run_remote: Callable[[str, Job, Instance], None],
                 ask: Callable[[Screen[Any]], Awaitable[Any]], notify: Callable[..., None],
                 refresh: Callable[[], object]) -> None:
        self._selected = selected
        self._run_remote = run_remote
        self._ask = ask
        self._notify = notify
        self._refresh = refresh
        self.last_progress: list[str] = []  # the progress lines of the last action (tests read them)

    def toggle(self) -> None:
        """`h`: shelve an ACTIVE or SHUTOFF instance, unshelve a shelved one; say why not otherwise."""
        inst = self._selected()
        if inst is None:
            return
        if inst.shelved:
            self._notify(f"Unshelving {inst.name}…", timeout=3)
            self._run_remote("unshelve", self._unshelve, inst)
        elif inst.status in ("ACTIVE", "SHUTOFF"):
            self._notify(f"Checking what shelving {inst.name} ends…", timeout=2)
            self._run_remote("shelve", self._shelve, inst)
        else:
            self._notify(f"{inst.name} is {inst.status}: it can be shelved when ACTIVE or SHUTOFF, unshelved when "
                         "SHELVED or SHELVED_OFFLOADED.", severity="warning")

    def _say(self) -> Callable[[str], None]:
        """Progress from any thread (the cloud waits in a thread) as a short notification on the app's loop."""
        loop = asyncio.get_running_loop()
        self.last_progress = []

        def say(text: str) -> None:
            self.last_progress.append(text)
            loop.call_soon_threadsafe(lambda: self._notify(text, timeout=3))
            loop.call_soon_threadsafe(self._refresh)

        return say

    async def _shelve(self, engine: Engine, inst: Instance) -> str | None:
        from tui.ui.screens.confirm import Confirm

        async def confirm(text: str) -> bool:
            return bool(await self._ask(Confirm(f"Shelve {inst.name}?", text, "Shelve", danger=True)))

        try:
            done = await engine.shelving.shelve(inst, confirm, self._say())
        finally:
            self._refresh()
        return f"{done.name} is {done.status}: nothing runs, its disk is kept. Press h on it to unshelve."

    async def _unshelve(self, engine: Engine, inst: Instance) -> str | None:
        try:
            done = await engine.shelving.unshelve(inst, self._say())
        finally:
            self._refresh()
        text = f"{done.instance.name} is {done.instance.status} again."
        if done.jupyter_port:
            text += f" Jupyter runs again, its tunnel on 127.0.0.1:{done.jupyter_port}."
        elif done.jupyter_error:
            text += f" Jupyter ran before but did not start again: {done.jupyter_error}"
        if done.clusters:
            text += f" Dask cluster sessions restarted on {', '.join(done.clusters)}."
        return text
