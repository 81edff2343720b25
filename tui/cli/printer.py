"""Prints the core's events (`tui.core.events`, the same ones the app shows) and answers host key questions."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import TYPE_CHECKING, Any

from tui.cli.common import quiet_stdout, say, yes

if TYPE_CHECKING:
    from tui.cli.common import Context
    from tui.core.events import Event, HostKeyQuestion, JupyterState, SetupEvent


class Printer:
    """Turns manager events into lines: the command's output on stdout, progress on stderr. A failure is not
    printed here: the operation raises it and the command prints it, once."""

    def __init__(self, ctx: Context, names: dict[str, str], accept_fp: str = "") -> None:
        self.ctx = ctx
        self.names = names
        self.accept_fp = accept_fp
        self.bad_fingerprint = False
        self.step = ""  # the setup step running now ("" when none)
        self._connected: set[str] = set()
        self._tunnel_seen: dict[tuple[str, str], tuple[str, str]] = {}
        self.background_failed = asyncio.Event()  # set (on the loop) when a background task died: said on stderr

    def name(self, instance_id: str) -> str:
        return self.names.get(instance_id, instance_id)

    def __call__(self, event: Event) -> None:
        """Never raises: a reader of stdout that went away must not break the operation (or its cleanup)."""
        try:
            self._show(event)
            sys.stdout.flush()
        except BrokenPipeError:
            quiet_stdout()

    def _show(self, event: Event) -> None:
        from tui.core import events as ev

        if isinstance(event, ev.HostKeyQuestion):
            self._host_key(event)
        elif isinstance(event, ev.SetupProgress):
            self._setup(event.event)
        elif isinstance(event, ev.LogLines):
            for line in event.lines:
                self.ctx.print(line)
        elif isinstance(event, ev.ConnectionState):
            if event.state == "connecting":
                say(f"Connecting to {self.name(event.instance_id)}...")
            elif event.state == "connected":
                self._connected.add(event.instance_id)
            elif event.state == "lost" and event.instance_id in self._connected:  # a failed login is raised
                self._connected.discard(event.instance_id)
                say(f"Connection to {self.name(event.instance_id)} lost ({event.error})")
        elif isinstance(event, ev.JupyterState):
            self._jupyter(event)
        elif isinstance(event, ev.TunnelChanged):
            self._tunnel(event)
        elif isinstance(event, ev.IdleNudge | ev.BackgroundFailed | ev.HostKeysUnpinned):
            say(event.message if isinstance(event, ev.IdleNudge) else f"warning: {event.message}")
            if isinstance(event, ev.BackgroundFailed):
                self.background_failed.set()
        elif isinstance(event, ev.ClusterProgress):
            self.ctx.print(f"  {event.instance or 'cluster'}: {event.message}")

    def _setup(self, event: SetupEvent) -> None:
        from tui.core import events as ev

        if isinstance(event, ev.StepStarted):
            self.step = event.step
            self.ctx.print(f"[{event.index + 1}/{event.total}] {event.step}: {event.description}")
        elif isinstance(event, ev.OutputLines):
            for line in event.lines:
                self.ctx.print(f"    {line}")
        elif isinstance(event, ev.StepFinished):
            r = event.result
            self.step = ""
            self.ctx.print(f"  -> {r.status.value} ({r.seconds:.1f} s)" + (f": {r.error}" if r.error else ""))
        elif isinstance(event, ev.Reconnecting):
            self.ctx.print(f"  connection lost in {event.step} ({event.error}); reconnecting, attempt {event.attempt}")

    def _jupyter(self, event: JupyterState) -> None:
        name = self.name(event.instance_id)
        if event.state == "error":
            return  # raised as ManagerError too: the command prints it once
        if event.state == "running":
            where = (f"{event.public_url} (token hidden)" if event.local_port
                     else f"port {event.remote_port} on the VM (no tunnel)")
            self.ctx.print(f"Jupyter is running on {name}: {where}" + (f"; {event.error}" if event.error else ""))
        else:
            self.ctx.print(f"Jupyter on {name}: {event.state}")

    def _tunnel(self, event: Any) -> None:
        info = event.info
        seen = (str(info.state), info.error)
        if info.state == "starting" or self._tunnel_seen.get(info.key) == seen:
            return
        self._tunnel_seen[info.key] = seen
        label = "" if info.purpose == "jupyter" else f" ({info.purpose})"
        self.ctx.print(f"Tunnel{label} 127.0.0.1:{info.local_port} -> {self.name(info.instance)}:{info.remote_port}: "
                       f"{info.state}" + (f" ({info.error})" if info.error else ""))

    def _host_key(self, q: HostKeyQuestion) -> None:
        say(f"Host {q.host}:{q.port} ({self.name(q.instance_id)}) presents an unknown {q.key_type} key, "
            f"fingerprint {q.fingerprint}.")
        if self.accept_fp:
            if self.accept_fp != q.fingerprint:
                self.bad_fingerprint = True
                say(f"cades-tui: error: the host presents {q.fingerprint}, not {self.accept_fp}")
            q.answer(self.accept_fp == q.fingerprint)
        elif sys.stdin.isatty():  # asked on a thread of its own: the event loop (and Ctrl+C) keep running
            threading.Thread(target=lambda: q.answer(_ask("Trust this host key? [y/N] ")), daemon=True).start()
        else:
            say(f"Re-run with --accept-host-key {q.fingerprint} once you have checked it.")
            q.refuse()


def _ask(prompt: str) -> bool:
    try:
        return yes(input(prompt))
    except EOFError:
        return False
