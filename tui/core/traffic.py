"""The byte counts of the tunnels a process serves, shared with other processes (`status --json`).

A tunnel lives in the process that opened it (the app, or `cades-tui tunnel|open` in the foreground); `status` runs
in another. So each serving process keeps one small file in the state folder, `traffic-<pid>.json` (mode 600),
rewritten while bytes move (about once a second, never while idle) and removed when its tunnels close: for each
tunnel its instance, purpose, local port and the bytes carried so far. `read_counts` gives the counts of the files
whose process is alive (a file left by a killed process is removed).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from tui.core.models import TunnelInfo

PREFIX = "traffic-"

Counts = dict[tuple[str, str, int], tuple[int, int]]  # (instance id, purpose, local port) -> (bytes in, bytes out)


class TrafficFile:
    """This process's file of byte counts in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / f"{PREFIX}{os.getpid()}.json"

    def write(self, tunnels: Iterable[TunnelInfo]) -> None:
        rows = [{"instance": t.instance, "purpose": t.purpose, "local_port": t.local_port, "bytes_in": t.bytes_in,
                 "bytes_out": t.bytes_out} for t in tunnels if t.local_port]
        tmp = ""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            with os.fdopen(fd, "w") as f:
                json.dump({"pid": os.getpid(), "tunnels": rows}, f)
            os.replace(tmp, self.path)
        except OSError:  # a read-only or full disk: the counts are a nicety, the tunnel goes on
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def read_counts(folder: Path, others_only: bool = False) -> Counts:
    """The byte counts of every tunnel served by a live process, from the files in `folder`; `others_only`: not
    this process's own (its tunnels are known first-hand, and its file lags their closing by up to a second)."""
    counts: Counts = {}
    own = TrafficFile(folder).path
    for path in folder.glob(f"{PREFIX}*.json"):
        if others_only and path == own:
            continue
        try:
            data = json.loads(path.read_text())
            pid = int(data["pid"])
            rows = list(data["tunnels"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not _alive(pid):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        for row in rows:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                key = (str(row["instance"]), str(row["purpose"]), int(row["local_port"]))
                counts[key] = (int(row["bytes_in"]), int(row["bytes_out"]))
    return counts
