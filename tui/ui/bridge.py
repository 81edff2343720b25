"""The one bridge from the core's events to the app: fold each into the live state, then post it as a message.

Every event type of `tui.core.events` has one Textual message class of the same name in `tui.ui.core_messages`
(`JupyterState` → handler `on_jupyter_state`). Log and setup output are batched (one message per instance per
interval, longer while the app is behind or a flood runs); state messages coalesce (`can_replace`).
Callable from any thread: off the app's loop it hops on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from textual.message import Message

from tui.core import events
from tui.ui import core_messages as cm

if TYPE_CHECKING:
    from tui.core.events import Event
    from tui.core.live import Fleet

log = logging.getLogger("tui.ui")
MAX_BATCH_S = 0.25  # a log flood is shown 4 times a second: each redraw costs the same, whatever the lines
FLOOD_LINES_PER_S = 4000


def message_for(event: object) -> cm.CoreMessage[Any] | None:
    """The event as its message (`tui.ui.core_messages`). A signal without one (`events.SIGNALS`: the panes read
    it from the live state) is not posted; any other event without one is an error in the app log (a test keeps
    that from happening)."""
    cls = cm.FOR_EVENT.get(type(event))
    if cls is None:
        if type(event) not in events.SIGNALS:
            log.error("no message class for the core's %s event: add one to tui/ui/core_messages.py",
                      type(event).__name__)
        return None
    return cls(event)


class EventBridge:
    """`emit` for the core: folds each event into `fleet`, tells `changed` which instances changed, posts it."""

    def __init__(self, fleet: Fleet, post: Callable[[Message], object], queue_size: Callable[[], int],
                 changed: Callable[[set[str]], None], interval: float = 0.1) -> None:
        self._ev = events
        self.fleet = fleet
        self.post = post
        self.queue_size = queue_size
        self.changed = changed
        self.interval = interval
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._log: dict[str, list[str]] = {}
        self._output: dict[tuple[str, str], Any] = {}  # (instance, step) -> SetupProgress with merged lines
        self._order: list[Any] = []  # pending setup events, in order
        self._flush_at: asyncio.TimerHandle | None = None
        self._last_lines = 0

    def __call__(self, event: Event) -> None:
        if threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self, event)
            return
        ev = self._ev
        if isinstance(event, ev.LogLines):
            self._log.setdefault(event.instance_id, []).extend(event.lines)
            self._schedule()
        elif isinstance(event, ev.SetupProgress) and isinstance(event.event, ev.OutputLines):
            key = (event.instance_id, event.event.step)
            pending = self._output.get(key)
            if pending is None:
                self._output[key] = event
                self._order.append(key)
            else:
                merged = replace(pending.event, lines=pending.event.lines + event.event.lines)
                self._output[key] = replace(pending, event=merged)
            self._schedule()
        else:
            self.flush()  # keep the order: lines before a state change
            self._deliver(event)

    def _deliver(self, event: Any) -> None:
        changed = self.fleet.apply(event)
        if changed or isinstance(event, self._ev.Polled):
            self.changed(changed)
        message = message_for(event)
        if message is not None:
            self.post(message)

    def _schedule(self) -> None:
        if self._flush_at is None:
            backlog = self.queue_size()
            delay = self.interval * (1 + min(backlog, 200) / 10)  # back off while the app is behind
            delay = max(delay, min(MAX_BATCH_S, self._last_lines / FLOOD_LINES_PER_S))  # and during a flood
            self._flush_at = self._loop.call_later(delay, self.flush)

    def flush(self) -> None:
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        order, output = self._order, self._output
        self._order, self._output = [], {}
        for key in order:
            self._deliver(output[key])
        log, self._log = self._log, {}
        self._last_lines = sum(len(lines) for lines in log.values())
        for iid, lines in log.items():
            self.post(cm.LogLinesMessage(self._ev.LogLines(iid, tuple(lines))))
