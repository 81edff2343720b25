"""What a tunnel shares with its data path (asyncssh_forward.ChannelPath or openssh_handoff.HandoffPath).

Both paths count bytes into the tunnel's `Counters`, start their tasks through the tunnel (which cancels them
when it closes), and let accepted connections wait for the tunnel's UP event, at most `accept_wait` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Spawn = Callable[[Awaitable[None]], None]


class Counters:
    """Bytes a tunnel moved, over either data path."""

    __slots__ = ("bytes_in", "bytes_out")

    def __init__(self) -> None:
        self.bytes_in = 0  # VM → local client
        self.bytes_out = 0  # local client → VM


@dataclass(frozen=True)
class PathContext:
    """The tunnel's side of a data path: its byte counts, task starter and UP event, and how it waits and closes.

    close_connection: whether the tunnel owns its SSH connections (closes them when done with them);
    refusing: whether connections accepted now are to be closed at once (the tunnel is parked: nothing to reach).
    """

    counters: Counters
    spawn: Spawn
    up: asyncio.Event
    accept_wait: float
    close_connection: bool
    refusing: Callable[[], bool] = lambda: False
