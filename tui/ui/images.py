"""`i`: make an image of the selected instance — the app's owner of that work (the App only delegates to it).

It asks for the name (`ImageName`: taken names and a full image quota refused there), then runs the engine's
`images.create` in a thread worker; each state it reports (queued, saving, active; a volume-backed instance's
snapshots) arrives as an `ImageProgress` message for the Setup log pane, the result as `ImageDone` (a
notification). One image at a time per instance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from textual.message import Message

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel
    from textual.screen import Screen
    from textual.worker import Worker

    from tui.core.api import Engine
    from tui.core.models import Instance

Write = Callable[[str, str, bool], None]  # (title, line, failed): one line in the Setup log pane


class ImageProgress(Message):
    def __init__(self, instance: str, line: str) -> None:
        super().__init__()
        self.instance = instance
        self.line = line


class ImageDone(Message):
    def __init__(self, instance_id: str, instance: str, text: str, ok: bool) -> None:
        super().__init__()
        self.instance_id = instance_id
        self.instance = instance
        self.text = text
        self.ok = ok


class ImageHost(Protocol):
    """What the maker needs of the app."""

    engine: Engine | None

    def push_screen_wait(self, screen: Screen[Any]) -> Awaitable[Any]: ...
    def run_worker(self, work: Any, name: str | None = "", group: str = "default", description: str = "",
                   exit_on_error: bool = True, start: bool = True, exclusive: bool = False,
                   thread: bool = False) -> Worker[Any]: ...
    def post_message(self, message: Message) -> bool: ...
    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None: ...


def suggested_name(inst: Instance, now: datetime | None = None) -> str:
    return f"{inst.name}-{(now or datetime.now(UTC)):%Y%m%d-%H%M}"


class ImageMaker:
    """See the module docstring. `write` puts a line in the Setup log pane."""

    def __init__(self, host: ImageHost, write: Write, selected: Callable[[], Instance | None]) -> None:
        self.host = host
        self.write = write
        self.selected = selected  # the instance under the cursor (says what to do when none)
        self.running: set[str] = set()  # instance ids with an image being made

    def start(self) -> None:
        inst = self.selected()
        engine = self.host.engine
        if inst is None or engine is None:
            return
        if inst.status not in ("ACTIVE", "SHUTOFF"):
            self.host.notify(f"{inst.name} is {inst.status}: an image is made of an ACTIVE or SHUTOFF instance.",
                             severity="warning")
            return
        if inst.id in self.running:
            self.host.notify(f"An image of {inst.name} is being made already.", severity="warning")
            return
        self.host.run_worker(self._ask(engine, inst), group=f"image-name:{inst.id}", exit_on_error=False,
                             name=f"image name {inst.name}")

    async def _ask(self, engine: Engine, inst: Instance) -> None:
        from tui.core.cloud.base import CloudError
        from tui.ui.screens.image import ImageName

        try:
            listing = await asyncio.to_thread(engine.images.listing)
        except CloudError as exc:
            self.host.notify(f"Images could not be listed: {exc}", severity="error")
            return
        taken = frozenset(i.name for i in listing.images if i.own)
        name = await self.host.push_screen_wait(ImageName(inst, suggested_name(inst), listing.quota, taken))
        if not name:
            self.host.notify("Cancelled; nothing changed.")
            return
        self.running.add(inst.id)
        self.host.run_worker(lambda: self._make(engine, inst, name), thread=True, group=f"image:{inst.id}",
                             exit_on_error=False, name=f"image {inst.name}")

    def _make(self, engine: Engine, inst: Instance, name: str) -> None:
        """In a thread worker: createImage, then Glance polled to active; each line posted."""
        from tui.core.cloud.base import CloudError
        from tui.core.images import size

        def say(line: str) -> None:
            self.host.post_message(ImageProgress(inst.name, line))

        try:
            made = engine.images.create(inst.id, name, say, wait=True)
        except CloudError as exc:
            self.host.post_message(ImageDone(inst.id, inst.name, f"{exc.message}\n{exc.hint}".strip(), ok=False))
            return
        except BaseException:
            self.running.discard(inst.id)  # the worker's failure is shown by the app's one handler
            raise
        held = (f"; {len(made.snapshots)} volume snapshot(s), {sum(s.size_gb for s in made.snapshots)} GB"
                if made.snapshots else f", {size(made.image.size_bytes)}")
        self.host.post_message(ImageDone(inst.id, inst.name, (
            f"Image {made.image.name} of {inst.name} is active{held} (in {made.seconds:.0f} s). "
            "n launches from it: your images come first."), ok=True))

    def progress(self, message: ImageProgress) -> None:
        self.write(f"Image of {message.instance}", message.line, False)

    def done(self, message: ImageDone) -> None:
        self.running.discard(message.instance_id)
        self.write(f"Image of {message.instance}", message.text.splitlines()[0], not message.ok)
        self.host.notify(message.text, severity="information" if message.ok else "error", markup=False)
