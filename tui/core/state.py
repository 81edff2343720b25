"""The app's persistent state: which Jupyter servers run where, and the tunnels open to each (instance, purpose).

One JSON file in the XDG state dir (`tui.core.paths.state_dir()/state.json`), written atomically
(temporary file + os.replace, mode 600). Tokens are never stored: URLs are saved without their
token and the token is re-read from the VM on reattach (`tui.core.jupyter.server.JupyterControl.find`).

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
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tui.core import paths
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


@dataclass(slots=True)
class AppState:
    path: Path
    servers: dict[str, ServerRecord] = field(default_factory=dict)
    tunnels: dict[tuple[str, str], TunnelRecord] = field(default_factory=dict)
    snoozes: dict[str, str] = field(default_factory=dict)  # instance -> ISO time until idle nudges are quiet
    last_ports: dict[str, int] = field(default_factory=dict)  # "instance/purpose" -> the last local port used

    @classmethod
    def default_path(cls) -> Path:
        return paths.state_dir() / STATE_FILE

    @classmethod
    def load(cls, path: Path | None = None) -> AppState:
        """The saved state; empty when the file is missing or unreadable (it is only a cache)."""
        path = path or cls.default_path()
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls(path)
        if not isinstance(data, dict):
            return cls(path)
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
        return cls(path, servers, tunnels, snoozes, last_ports)

    def save(self) -> None:
        payload: dict[str, Any] = {
            "version": VERSION,
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "servers": [asdict(r) for r in self.servers.values()],
            "tunnels": [asdict(r) for r in self.tunnels.values()],
            "snoozes": self.snoozes,
            "last_ports": self.last_ports,
        }
        text = json.dumps(payload, indent=2, sort_keys=True)
        if "token=" in text:  # defence in depth: ServerRecord already strips tokens
            raise ValueError("refusing to write a Jupyter token to the state file")
        write_private(self.path, text)

    def put(self, record: ServerRecord) -> None:
        self.servers[record.instance] = record
        self.save()

    def forget(self, instance: str) -> None:
        """Forget the instance's Jupyter server and its Jupyter tunnel (Jupyter was stopped)."""
        gone = self.servers.pop(instance, None) is not None
        gone = self.tunnels.pop((instance, JUPYTER), None) is not None or gone
        if gone:
            self.save()

    def forget_instance(self, instance: str) -> None:
        """Forget everything about an instance that no longer exists."""
        before = (len(self.servers), len(self.tunnels), len(self.snoozes), len(self.last_ports))
        self.servers.pop(instance, None)
        self.snoozes.pop(instance, None)
        self.tunnels = {k: v for k, v in self.tunnels.items() if k[0] != instance}
        self.last_ports = {k: v for k, v in self.last_ports.items() if k.partition("/")[0] != instance}
        if (len(self.servers), len(self.tunnels), len(self.snoozes), len(self.last_ports)) != before:
            self.save()

    def snooze(self, instance: str, until: datetime) -> None:
        """Quiet the idle nudges of `instance` until `until` (an aware datetime)."""
        self.snoozes[instance] = until.astimezone(UTC).isoformat(timespec="seconds")
        self.save()

    def snoozed_until(self, instance: str) -> datetime | None:
        try:
            return datetime.fromisoformat(self.snoozes[instance])
        except (KeyError, ValueError):
            return None

    def tunnel(self, instance: str, purpose: str = JUPYTER) -> TunnelRecord | None:
        return self.tunnels.get((instance, purpose))

    def put_tunnel(self, record: TunnelRecord) -> None:
        last = f"{record.instance}/{record.purpose}"
        if self.tunnels.get(record.key) != record or self.last_ports.get(last) != record.local_port:
            self.tunnels[record.key] = record
            self.last_ports[last] = record.local_port
            self.save()

    def last_port(self, instance: str, purpose: str = JUPYTER) -> int:
        """The local port of the last tunnel for (instance, purpose), open or closed since; 0 when none."""
        record = self.tunnels.get((instance, purpose))
        return record.local_port if record is not None else self.last_ports.get(f"{instance}/{purpose}", 0)

    def drop_tunnel(self, instance: str, purpose: str = JUPYTER) -> None:
        if self.tunnels.pop((instance, purpose), None) is not None:
            self.save()


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
