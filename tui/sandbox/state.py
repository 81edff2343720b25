"""The sandbox's single state object: plain JSON-able records guarded by one lock, saved atomically.

Mutations happen under `state.lock` and end with `state.touch()`; a writer thread saves `state.json`
(tmp file + `os.replace`) at most every `SAVE_DEBOUNCE_S`, so GETs never touch the disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SAVE_DEBOUNCE_S = 0.1
FORMAT = 1

Record = dict[str, Any]


def new_id() -> str:
    return str(uuid.uuid4())


def now_iso() -> str:
    """Nova/Keystone style timestamp: 2026-01-02T03:04:05Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_usec() -> str:
    """Nova's OS-SRV-USG / Cinder style timestamp: 2026-01-02T03:04:05.123456 (no zone)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def empty_data() -> dict[str, Any]:
    return {
        "format": FORMAT,
        "api_port": 0,
        "project_id": uuid.uuid4().hex,
        "user_id": uuid.uuid4().hex,
        "demo_seeded": False,
        "servers": {},
        "deleted_servers": {},  # what Nova still shows of deleted servers (status DELETED) under changes-since
        "volumes": {},
        "keypairs": {},
        "networks": {},
        "subnets": {},
        "ports": {},
        "floatingips": {},
        "security_groups": {},
        "security_group_rules": {},
        "images": {},  # the project's own images (createImage)
        "snapshots": {},  # Cinder volume snapshots
    }


class State:
    """All sandbox records (dicts keyed by id) + the lock that guards them + persistence."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.data: dict[str, Any] = empty_data()
        self._dirty = threading.Event()
        self._stopping = False
        self._writer: threading.Thread | None = None

    # Collections, typed for the services.
    def table(self, name: str) -> dict[str, Record]:
        table: dict[str, Record] = self.data[name]
        return table

    def load(self) -> bool:
        """Restore from disk; False when there was nothing to restore."""
        if not self.path.exists():
            return False
        data = json.loads(self.path.read_text())
        if data.get("format") != FORMAT:
            raise RuntimeError(f"{self.path}: unknown state format {data.get('format')!r}")
        base = empty_data()
        base.update(data)
        with self.lock:
            self.data = base
        return True

    def start(self) -> None:
        self._stopping = False
        self._writer = threading.Thread(target=self._write_loop, name="sandbox-state", daemon=True)
        self._writer.start()

    def stop(self) -> None:
        """Stop the writer and save what is pending."""
        self._stopping = True
        self._dirty.set()
        if self._writer is not None:
            self._writer.join(timeout=10)
            self._writer = None
        self.save()

    def touch(self) -> None:
        """Mark the state changed: it will be saved shortly."""
        self._dirty.set()

    def save(self) -> None:
        with self.lock:
            text = json.dumps(self.data, separators=(",", ":"), sort_keys=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def _write_loop(self) -> None:
        while not self._stopping:
            self._dirty.wait()
            if self._stopping:
                return
            threading.Event().wait(SAVE_DEBOUNCE_S)
            self._dirty.clear()
            self.save()


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
