"""A guest that powers itself off: the sandbox's VMs are unprivileged SSH hosts, so `poweroff` on their PATH is a
shim that tells the sandbox, which then does what Nova does when a guest shuts down — the server goes SHUTOFF
(task `powering-off`, then its SSH host stops: every process of the VM ends, as on a halt)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tui.sandbox import guestbin

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox

REQUEST = "poweroff-requested"  # in the VM's folder (its root, not its HOME: the guest's disk stays clean)
WATCH_S = 0.25

SHIM = """#!/bin/sh
# The sandbox's guest poweroff: tells the sandbox (it marks the server SHUTOFF, as Nova does) and returns.
[ -n "$CADES_SANDBOX_VM" ] || { echo "poweroff: not a sandbox VM" >&2; exit 1; }
: > "$CADES_SANDBOX_VM/poweroff-requested" && echo "poweroff: the sandbox powers this VM off"
"""


def install_shim(root: Path) -> None:
    """`ROOT/bin/poweroff`: the VM's sessions find it first on their PATH."""
    guestbin.install(root, "poweroff", SHIM)


def watch(sb: Sandbox) -> None:
    """Look for guests' power-off requests every WATCH_S on the sandbox's scheduler (re-armed each time)."""

    def look() -> None:
        try:
            check(sb)
        finally:
            if not sb.scheduler.stopping:  # a stopped sandbox watches no more (a restart watches anew)
                sb.scheduler.call_later(WATCH_S, look)

    sb.scheduler.call_later(WATCH_S, look)


def check(sb: Sandbox) -> list[str]:
    """Servers whose guest asked to power off: set powering-off and stopped at once. Returns their ids."""
    if not sb.instances_dir.is_dir():
        return []
    asked = [p.parent.name for p in sb.instances_dir.glob(f"*/{REQUEST}")]
    done = []
    for sid in asked:
        (sb.instances_dir / sid / REQUEST).unlink(missing_ok=True)
        with sb.state.lock:
            srv = sb.state.table("servers").get(sid)
            if srv is None or srv["status"] != "ACTIVE" or srv.get("pending"):
                continue
            srv["task_state"] = "powering-off"
            sb.later(0.0, "servers", sid, "stop")
            sb.state.touch()
        done.append(sid)
    return done
