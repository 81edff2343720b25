"""The app's persistent state: which Jupyter servers run where, and their tunnels' local ports.

One JSON file in the XDG state dir (`tui.core.paths.state_dir()/state.json`), written atomically
(temporary file + os.replace, mode 600). Tokens are never stored: URLs are saved without their
token and the token is re-read from the VM on reattach (`tui.core.jupyter.server.JupyterControl.find`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tui.core import paths
from tui.core.jupyter.logparse import url_without_token

STATE_FILE = "state.json"
VERSION = 1


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
    tunnel_ports: tuple[int, ...] = ()
    auto_reopen: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", url_without_token(self.url) if self.url else "")
        object.__setattr__(self, "tunnel_ports", tuple(int(p) for p in self.tunnel_ports))


@dataclass(slots=True)
class AppState:
    path: Path
    servers: dict[str, ServerRecord] = field(default_factory=dict)
    snoozes: dict[str, str] = field(default_factory=dict)  # instance -> ISO time until idle nudges are quiet

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
        servers: dict[str, ServerRecord] = {}
        for raw in data.get("servers", []) if isinstance(data, dict) else []:
            try:
                rec = ServerRecord(**{k: raw[k] for k in raw if k in ServerRecord.__dataclass_fields__})
            except (TypeError, ValueError):
                continue
            servers[rec.instance] = rec
        raw_snoozes = data.get("snoozes", {}) if isinstance(data, dict) else {}
        snoozes = {str(k): str(v) for k, v in raw_snoozes.items()} if isinstance(raw_snoozes, dict) else {}
        return cls(path, servers, snoozes)

    def save(self) -> None:
        payload: dict[str, Any] = {
            "version": VERSION,
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "servers": [asdict(r) for r in self.servers.values()],
            "snoozes": self.snoozes,
        }
        text = json.dumps(payload, indent=2, sort_keys=True)
        if "token=" in text:  # defence in depth: ServerRecord already strips tokens
            raise ValueError("refusing to write a Jupyter token to the state file")
        write_private(self.path, text)

    def put(self, record: ServerRecord) -> None:
        self.servers[record.instance] = record
        self.save()

    def forget(self, instance: str) -> None:
        if self.servers.pop(instance, None) is not None:
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

    def set_tunnel_ports(self, instance: str, ports: tuple[int, ...]) -> None:
        rec = self.servers.get(instance)
        if rec is not None:
            self.put(replace(rec, tunnel_ports=ports))


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
