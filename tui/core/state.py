"""The app's persistent state: which Jupyter servers run where, and the tunnels open to each (instance, purpose).

One JSON file in the XDG state dir (`tui.core.paths.state_dir()/state.json`), written atomically
(temporary file + os.replace, mode 600). Tokens are never stored: URLs are saved without their
token and the token is re-read from the VM on reattach (`tui.core.jupyter.server.JupyterControl.find`).

One owner, many processes: the app, several CLI commands and a second app may run at once, each with its own
`AppState` on the same file. None keeps a copy of its own to save: every change is an operation (put or forget a
server record, put or drop a tunnel record, snooze, forget an instance) applied to the file as it is *now* — re-read
under the cross-process lock `state.json.lock` (`tui.core.platform.held_lock`), changed, written atomically — so
one writer never overwrites another's records. Readers get a fresh view (`view()`, and the read-only `servers`,
`tunnels`, `snoozes`, `last_ports`): the file is parsed again whenever it changed on disk.

Version 2 keys tunnels by (instance, purpose) — `jupyter`, `dask-dashboard`, ... — in their own list; a version 1
file (one `tunnel_ports` list per Jupyter server) is migrated on load, so servers and tunnels are still found.
`last_ports` keeps the last local port of each (instance, purpose), also after its tunnel closed: the next tunnel
for it prefers that port (a bookmark stays valid).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tui.core import paths, platform
from tui.core.jupyter.logparse import url_without_token

STATE_FILE = "state.json"
VERSION = 2
JUPYTER = "jupyter"  # the purpose of a tunnel to Jupyter


@dataclass(frozen=True, slots=True)
class ServerRecord:
    """A Jupyter server the app started (or found) on an instance."""

    instance: str
    session: str
    multiplexer: str
    remote_port: int
    url: str = ""  # without the token
    workspace: str = ""
    logfile: str = ""
    started_at: str = ""
    auto_reopen: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", url_without_token(self.url) if self.url else "")


@dataclass(frozen=True, slots=True)
class TunnelRecord:
    """A tunnel that was open: re-opened on the next start (same local port when free)."""

    instance: str
    purpose: str
    local_port: int
    remote_host: str = "127.0.0.1"
    remote_port: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "local_port", int(self.local_port))
        object.__setattr__(self, "remote_port", int(self.remote_port))

    @property
    def key(self) -> tuple[str, str]:
        return (self.instance, self.purpose)


@dataclass(frozen=True, slots=True)
class ForwardRecord:
    """A port forward the user saved (issue 22): opened by the app and on reattach while `enabled`.

    `name` is the instance's name when saved (for `ssh-config` and `forward list` without asking the cloud);
    `local_port` 0: the remote port when free here, else any free one."""

    instance: str
    label: str
    remote_port: int
    remote_host: str = "127.0.0.1"
    local_port: int = 0
    name: str = ""
    enabled: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "local_port", int(self.local_port))
        object.__setattr__(self, "remote_port", int(self.remote_port))
        object.__setattr__(self, "enabled", bool(self.enabled))

    @property
    def key(self) -> tuple[str, str]:
        return (self.instance, self.label)


@dataclass(slots=True)
class _Data:
    """What the file holds, parsed (mutable: an operation changes it between a read and a write under the lock)."""

    servers: dict[str, ServerRecord] = field(default_factory=dict)
    tunnels: dict[tuple[str, str], TunnelRecord] = field(default_factory=dict)
    snoozes: dict[str, str] = field(default_factory=dict)  # instance -> ISO time until idle nudges are quiet
    last_ports: dict[str, int] = field(default_factory=dict)  # "instance/purpose" -> the last local port used
    forwards: dict[tuple[str, str], ForwardRecord] = field(default_factory=dict)  # (instance, label)

    def view(self) -> StateView:
        return StateView(MappingProxyType(dict(self.servers)), MappingProxyType(dict(self.tunnels)),
                         MappingProxyType(dict(self.snoozes)), MappingProxyType(dict(self.last_ports)),
                         MappingProxyType(dict(self.forwards)))


def _empty() -> Mapping[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class StateView:
    """The saved state as read at one moment (read-only)."""

    servers: Mapping[str, ServerRecord] = field(default_factory=_empty)
    tunnels: Mapping[tuple[str, str], TunnelRecord] = field(default_factory=_empty)
    snoozes: Mapping[str, str] = field(default_factory=_empty)
    last_ports: Mapping[str, int] = field(default_factory=_empty)
    forwards: Mapping[tuple[str, str], ForwardRecord] = field(default_factory=_empty)

    def tunnel(self, instance: str, purpose: str = JUPYTER) -> TunnelRecord | None:
        return self.tunnels.get((instance, purpose))

    def last_port(self, instance: str, purpose: str = JUPYTER) -> int:
        """The local port of the last tunnel for (instance, purpose), open or closed since; 0 when none."""
        record = self.tunnels.get((instance, purpose))
        return record.local_port if record is not None else self.last_ports.get(f"{instance}/{purpose}", 0)

    def snoozed_until(self, instance: str) -> datetime | None:
        try:
            return datetime.fromisoformat(self.snoozes[instance])
        except (KeyError, ValueError):
            return None


_LOCKS: dict[Path, threading.Lock] = {}  # one per file in this process: its threads queue here, not on the file
_LOCKS_GUARD = threading.Lock()


def _thread_lock(path: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(path, threading.Lock())


class AppState:
    """The one owner of the saved state file: operations merged into the file under its lock, fresh views."""

    LOCK_TIMEOUT = 10.0  # seconds to wait for another writer (each holds the lock for a few milliseconds)

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or self.default_path()
        # the last view read, with the file's (inode, mtime, size) then: one attribute, so threads swap it whole
        self._cache: tuple[tuple[int, int, int], StateView] | None = None

    @classmethod
    def default_path(cls) -> Path:
        return paths.state_dir() / STATE_FILE

    @classmethod
    def load(cls, path: Path | None = None) -> AppState:
        """The owner of the state file at `path` (default: the user's). Nothing is read until asked."""
        return cls(path)

    # -- reading -------------------------------------------------------------------------------------------------

    def view(self) -> StateView:
        """The saved state now: parsed again when the file changed on disk since the last read (any writer's
        `os.replace` gives it a new inode); empty when missing or unreadable (it is only a cache)."""
        try:
            st = self.path.stat()
        except OSError:
            return StateView()
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        cache = self._cache
        if cache is not None and cache[0] == seen:
            return cache[1]
        view = _read(self.path)[0].view()
        self._cache = (seen, view)
        return view

    @property
    def servers(self) -> Mapping[str, ServerRecord]:
        return self.view().servers

    @property
    def tunnels(self) -> Mapping[tuple[str, str], TunnelRecord]:
        return self.view().tunnels

    @property
    def snoozes(self) -> Mapping[str, str]:
        return self.view().snoozes

    @property
    def last_ports(self) -> Mapping[str, int]:
        return self.view().last_ports

    @property
    def forwards(self) -> Mapping[tuple[str, str], ForwardRecord]:
        return self.view().forwards

    def tunnel(self, instance: str, purpose: str = JUPYTER) -> TunnelRecord | None:
        return self.view().tunnel(instance, purpose)

    def last_port(self, instance: str, purpose: str = JUPYTER) -> int:
        """The local port of the last tunnel for (instance, purpose), open or closed since; 0 when none."""
        return self.view().last_port(instance, purpose)

    def snoozed_until(self, instance: str) -> datetime | None:
        return self.view().snoozed_until(instance)

    # -- operations: each merged into the file as it is now ------------------------------------------------------

    def put(self, record: ServerRecord) -> None:
        def op(d: _Data) -> bool:
            changed = d.servers.get(record.instance) != record
            d.servers[record.instance] = record
            return changed

        self._change(op)

    def forget(self, instance: str) -> None:
        """Forget the instance's Jupyter server and its Jupyter tunnel (Jupyter was stopped)."""
        def op(d: _Data) -> bool:
            gone = d.servers.pop(instance, None) is not None
            return d.tunnels.pop((instance, JUPYTER), None) is not None or gone

        self._change(op)

    def forget_instance(self, instance: str) -> None:
        """Forget everything about an instance that no longer exists."""
        def op(d: _Data) -> bool:
            before = (len(d.servers), len(d.tunnels), len(d.snoozes), len(d.last_ports), len(d.forwards))
            d.servers.pop(instance, None)
            d.snoozes.pop(instance, None)
            d.tunnels = {k: v for k, v in d.tunnels.items() if k[0] != instance}
            d.last_ports = {k: v for k, v in d.last_ports.items() if k.partition("/")[0] != instance}
            d.forwards = {k: v for k, v in d.forwards.items() if k[0] != instance}
            return (len(d.servers), len(d.tunnels), len(d.snoozes), len(d.last_ports), len(d.forwards)) != before

        self._change(op)

    def snooze(self, instance: str, until: datetime) -> None:
        """Quiet the idle nudges of `instance` until `until` (an aware datetime)."""
        value = until.astimezone(UTC).isoformat(timespec="seconds")

        def op(d: _Data) -> bool:
            changed = d.snoozes.get(instance) != value
            d.snoozes[instance] = value
            return changed

        self._change(op)

    def unsnooze(self, instance: str) -> None:
        """Idle nudges of `instance` are no longer quiet."""
        self._change(lambda d: d.snoozes.pop(instance, None) is not None)

    def put_tunnel(self, record: TunnelRecord) -> None:
        last = f"{record.instance}/{record.purpose}"

        def op(d: _Data) -> bool:
            if d.tunnels.get(record.key) == record and d.last_ports.get(last) == record.local_port:
                return False
            d.tunnels[record.key] = record
            d.last_ports[last] = record.local_port
            return True

        if self.view().tunnels.get(record.key) != record or self.view().last_ports.get(last) != record.local_port:
            self._change(op)  # (a tunnel is remembered after every follow: most are no change at all)

    def drop_tunnel(self, instance: str, purpose: str = JUPYTER) -> None:
        self._change(lambda d: d.tunnels.pop((instance, purpose), None) is not None)

    def put_forward(self, record: ForwardRecord) -> None:
        """Save (or replace) the user's forward (instance, label)."""
        def op(d: _Data) -> bool:
            changed = d.forwards.get(record.key) != record
            d.forwards[record.key] = record
            return changed

        self._change(op)

    def drop_forward(self, instance: str, label: str) -> None:
        """Forget the user's saved forward (instance, label)."""
        self._change(lambda d: d.forwards.pop((instance, label), None) is not None)

    def _change(self, op: Callable[[_Data], bool]) -> None:
        """Apply `op` to the file as it is now, under the file's lock (this process's threads queue first); write
        it back atomically when `op` says it changed something."""
        paths.ensure_private_dir(self.path.parent)
        with _thread_lock(self.path), platform.held_lock(self.path.with_name(self.path.name + ".lock"),
                                                          self.LOCK_TIMEOUT):
            data, unreadable = _read(self.path)
            if not op(data):
                return
            if unreadable:  # kept for a look, not overwritten: the records in it are lost to the app either way
                with contextlib.suppress(OSError):
                    os.replace(self.path, self.path.with_name(self.path.name + ".unreadable"))
            _write(self.path, data)
            self._cache = None  # the next view reads what was written


def _read(path: Path) -> tuple[_Data, bool]:
    """The file parsed, and whether it exists but could not be parsed."""
    try:
        text = path.read_text()
    except OSError:
        return _Data(), False
    try:
        data = json.loads(text)
    except ValueError:
        return _Data(), True
    if not isinstance(data, dict):
        return _Data(), True
    servers: dict[str, ServerRecord] = {}
    tunnels: dict[tuple[str, str], TunnelRecord] = {}
    for raw in _dicts(data.get("servers")):
        rec = _record(ServerRecord, raw)
        if rec is None:
            continue
        servers[rec.instance] = rec
        for port in raw.get("tunnel_ports", ()) if isinstance(raw.get("tunnel_ports"), list) else ():
            old = _record(TunnelRecord, {"instance": rec.instance, "purpose": JUPYTER, "local_port": port,
                                         "remote_port": rec.remote_port})  # version 1: one list per server
            if old is not None:
                tunnels.setdefault(old.key, old)
    for raw in _dicts(data.get("tunnels")):
        tunnel = _record(TunnelRecord, raw)
        if tunnel is not None:
            tunnels[tunnel.key] = tunnel
    raw_snoozes = data.get("snoozes", {})
    snoozes = {str(k): str(v) for k, v in raw_snoozes.items()} if isinstance(raw_snoozes, dict) else {}
    raw_ports = data.get("last_ports", {})
    last_ports = {str(k): v for k, v in raw_ports.items() if isinstance(v, int) and 0 < v < 65536} \
        if isinstance(raw_ports, dict) else {}
    forwards: dict[tuple[str, str], ForwardRecord] = {}
    for raw in _dicts(data.get("forwards")):
        forward = _record(ForwardRecord, raw)
        if forward is not None:
            forwards[forward.key] = forward
    return _Data(servers, tunnels, snoozes, last_ports, forwards), False


def _write(path: Path, data: _Data) -> None:
    payload: dict[str, Any] = {
        "version": VERSION,
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "servers": [asdict(r) for r in data.servers.values()],
        "tunnels": [asdict(r) for r in data.tunnels.values()],
        "snoozes": data.snoozes,
        "last_ports": data.last_ports,
        "forwards": [asdict(r) for r in data.forwards.values()],
    }
    text = json.dumps(payload, indent=2, sort_keys=True)
    if "token=" in text:  # defence in depth: ServerRecord already strips tokens
        raise ValueError("refusing to write a Jupyter token to the state file")
    write_private(path, text)


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _record(cls: type[Any], raw: dict[str, Any]) -> Any:
    """`cls(**raw)` with unknown keys ignored; None when the entry is unusable (the file is only a cache)."""
    try:
        return cls(**{k: raw[k] for k in raw if k in cls.__dataclass_fields__})
    except (TypeError, ValueError):
        return None


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically with mode 600 (directory 700)."""
    paths.ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
