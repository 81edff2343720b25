"""The VM's side of taking secrets off its disk for a snapshot: stdlib-only code run there by `python3 -c`
(sent by `tui.core.imagesecrets`), reading one JSON line on stdin.

`take`: read the secret files (regular files only, never through a symlink) and find the tokens in the logs; print
all of it as one JSON line; then, on "go", remove those files, mask each token in place (same length, so a writer
appending to the log is undisturbed) and `sync`; print "done". Nothing is removed before the caller has the
content. `put`: write each file back where it is missing (created under a temporary name, mode and mtime set,
fsynced, then linked to its name: never over a file that appeared meanwhile) and unmask the tokens still masked.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import hashlib
import json
import mmap
import os
import re
import stat
import sys
from typing import Any

TOKEN = re.compile(rb"token=([0-9A-Za-z_-]+)")
MASK = b"*"


def _runtime_dir() -> str:
    """Jupyter's runtime folder as Jupyter finds it (`RUNTIME_DIR` in tui/core/jupyter/server.py)."""
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.environ.get("JUPYTER_RUNTIME_DIR") or os.path.join(data, "jupyter", "runtime")


def _expand(pattern: str) -> str:
    return os.path.expanduser(pattern.replace("{runtime}", _runtime_dir()))


def _read_file(path: str) -> dict[str, Any] | None:
    """A regular file's content and metadata (never followed through a symlink); None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None
        data = f.read()
    return {"path": path, "mode": st.st_mode & 0o7777, "mtime": st.st_mtime_ns,
            "sha256": hashlib.sha256(data).hexdigest(), "data": base64.b64encode(data).decode()}


def _spans(path: str) -> list[list[Any]]:
    """[offset, token] of each token in a log (the token's own bytes, after `token=`)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return []
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode) or os.fstat(f.fileno()).st_size == 0:
            return []
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return [[t.start(1), t.group(1).decode()] for t in TOKEN.finditer(m)]


def find(ask: dict[str, Any]) -> dict[str, Any]:
    files = []
    for pattern in ask["files"]:
        for path in sorted(glob.glob(_expand(pattern))):
            got = _read_file(path)
            if got is not None:
                files.append(got)
    logs = []
    for name in ask["logs"]:
        path = _expand(name)
        spans = _spans(path)
        if spans:
            logs.append({"path": path, "spans": spans})
    return {"files": files, "logs": logs}


def _rewrite(path: str, spans: list[list[Any]], old: Any, new: Any) -> int:
    """Write `new(token)` at each span where `old(token)` is found; how many were written."""
    if sys.platform == "win32":  # a VM's code (no pread there)
        raise OSError("not on Windows")
    done = 0
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return 0
    try:
        for offset, token in spans:
            raw = token.encode()
            if os.pread(fd, len(raw), offset) == old(raw):
                os.pwrite(fd, new(raw), offset)
                done += 1
        os.fsync(fd)
    finally:
        os.close(fd)
    return done


def hide(found: dict[str, Any]) -> dict[str, Any]:
    if sys.platform == "win32":
        raise OSError("not on Windows")
    removed, masked = [], 0
    for f in found["files"]:
        with contextlib.suppress(OSError):
            os.unlink(f["path"])
            removed.append(f["path"])
    for log in found["logs"]:
        masked += _rewrite(log["path"], log["spans"], lambda raw: raw, lambda raw: MASK * len(raw))
    os.sync()
    return {"removed": removed, "masked": masked}


def _put_one(f: dict[str, Any]) -> str:
    """'restored', 'present' (the same bytes are there), 'differs' (another file took the name: kept), or why not."""
    if sys.platform == "win32":
        raise OSError("not on Windows")
    path, data = f["path"], base64.b64decode(f["data"])
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".cades-restore")
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fchmod(out.fileno(), f["mode"])
            os.fsync(out.fileno())
        os.utime(tmp, ns=(f["mtime"], f["mtime"]))
        try:
            os.link(tmp, path)
            return "restored"
        except FileExistsError:
            there = _read_file(path)
            return "present" if there is not None and there["sha256"] == f["sha256"] else "differs"
        finally:
            os.unlink(tmp)
    except OSError as exc:
        return exc.strerror or str(exc)


def put(found: dict[str, Any]) -> dict[str, Any]:
    if sys.platform == "win32":
        raise OSError("not on Windows")
    out: dict[str, Any] = {"restored": [], "present": [], "differs": [], "failed": [], "unmasked": 0}
    for f in found["files"]:
        result = _put_one(f)
        key = result if result in ("restored", "present", "differs") else "failed"
        out[key].append(f["path"] if key != "failed" else f["path"] + ": " + result)
    for log in found["logs"]:
        out["unmasked"] += _rewrite(log["path"], log["spans"], lambda raw: MASK * len(raw), lambda raw: raw)
    os.sync()
    return out


def main(argv: list[str]) -> int:
    ask = json.loads(sys.stdin.readline() or "null")
    if argv[0] == "take":
        found = find(ask)
        sys.stdout.write(json.dumps(found) + "\n")
        sys.stdout.flush()
        if sys.stdin.readline().strip() != "go":
            return 0  # the caller went away or had nothing to hide: nothing removed
        sys.stdout.write(json.dumps(hide(found)) + "\n")
    elif argv[0] == "put":
        sys.stdout.write(json.dumps(put(ask)) + "\n")
    else:
        return 2
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
