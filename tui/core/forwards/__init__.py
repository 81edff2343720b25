"""Any port of an instance forwarded to 127.0.0.1, labelled, and kept (issue 22, part 3). Pure: the UI imports this.

A forward is a tunnel of `tui.core.tunnels` under the purpose `forward:LABEL` (self-healing like Jupyter's); a
saved one is a `tui.core.state.ForwardRecord`, opened by the app and on every reattach while enabled. The work is
in `tui.core.forwards.service` (through the engine); what the VM listens on is read by
`tui.core.forwards.listening`. `local_forwards` gives the saved forwards of each instance for `ssh-config`
(`LocalForward` lines).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.core.models import Instance
    from tui.core.state import AppState

PREFIX = "forward:"  # a user forward's tunnel purpose is PREFIX + its label
LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")


def purpose_of(label: str) -> str:
    return PREFIX + label


def label_of(purpose: str) -> str | None:
    """The label of a user forward's tunnel purpose; None for Jupyter's, the dashboard's, ..."""
    return purpose[len(PREFIX):] if purpose.startswith(PREFIX) else None


def label_problem(label: str) -> str | None:
    """Why `label` cannot name a forward (None when it can)."""
    if LABEL_RE.fullmatch(label):
        return None
    return (f"label {label!r}: expected 1-32 letters, digits, '.', '_' or '-', starting with a letter or digit "
            "(e.g. tensorboard)")


def port_problem(port: int, what: str = "port") -> str | None:
    """Why `port` is not a TCP port (None when it is)."""
    return None if 1 <= port <= 65535 else f"{what} {port}: expected a TCP port 1-65535"


def default_label(remote_port: int) -> str:
    return f"port-{remote_port}"


@dataclass(frozen=True, slots=True)
class Forward:
    """One user forward as the front ends show it. `state`: a tunnel state (`up`, `reconnecting`, `down`, ...)
    when this process serves it; `open elsewhere` when another process (the app, a `forward` command) does;
    `closed` when nobody does. `wanted_port`: the local port asked for — `local_port` differs when it was taken."""

    instance: str
    name: str
    label: str
    remote_host: str
    remote_port: int
    local_port: int
    saved: bool
    enabled: bool
    state: str
    bytes_in: int | None = None
    bytes_out: int | None = None
    wanted_port: int = 0
    error: str = ""

    @property
    def purpose(self) -> str:
        return purpose_of(self.label)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}/" if self.local_port else ""

    @property
    def port_taken(self) -> bool:
        """The local port asked for was taken: another was chosen."""
        return bool(self.wanted_port and self.local_port and self.local_port != self.wanted_port)

    def taken_note(self) -> str:
        return (f"local port {self.wanted_port} is taken here; using {self.local_port} instead"
                if self.port_taken else "")


@dataclass(frozen=True, slots=True)
class Listener:
    """A TCP port the VM listens on: its address (`0.0.0.0`, `127.0.0.1`, `::`, ...) and the process when visible."""

    port: int
    address: str
    process: str = ""

    @property
    def remote_host(self) -> str:
        """Where a forward reaches it from the VM: its loopback when it listens there or on every address."""
        return "127.0.0.1" if self.address in WILDCARD_OR_LOOPBACK else self.address


WILDCARD_OR_LOOPBACK = frozenset({"0.0.0.0", "*", "::", "[::]", "127.0.0.1", "::1", "[::1]", ""})


LocalForward = tuple[int, str, int]  # (local port, remote host, remote port): ssh-config's `LocalForward` line


def local_forwards(state: AppState, instances: Iterable[Instance] | None = None) -> dict[str, list[LocalForward]]:
    """The saved forwards of each instance, by instance name, as (local_port, remote_host, remote_port) — what
    `ssh-config` writes as `LocalForward 127.0.0.1:LOCAL REMOTE_HOST:REMOTE`. The names come from `instances`
    when given (current names; instances not among them are left out), else from the records. A forward saved
    without a local port has its remote port's number (what `forward` asks for first). Disabled forwards too:
    they are kept, only closed."""
    names = {i.id: i.name for i in instances} if instances is not None else None
    out: dict[str, list[LocalForward]] = {}
    for record in sorted(state.forwards.values(), key=lambda r: (r.name, r.label)):
        name = names.get(record.instance) if names is not None else (record.name or record.instance)
        if name:
            out.setdefault(name, []).append((record.local_port or record.remote_port, record.remote_host,
                                             record.remote_port))
    return out
