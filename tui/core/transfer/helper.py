"""Both ends of a transfer: stdlib-only code that runs on the VM (`python3 -c`, sent by `channel.py`) and here.

Modes (`main`): `stat ROOT` lists files under ROOT (sizes, mtimes, partial files) and symbolic links (their
target text), `hash ROOT` hashes prefixes, `send ROOT` streams files as frames, `recv ROOT` writes frames, `delete
ROOT` removes listed files and links. A frame is a JSON header line, the bytes from the resume offset to the end,
and the SHA-256 of the whole file (or `-`); a link's frame is its header alone. Data goes to `.NAME.cades-part`
beside its target and is renamed over it only once complete and verified; a link is made beside it and renamed
over it the same way. Links are copied as links, as `rsync -a` does, never followed: every path a peer names is
checked to stay inside ROOT, a link on the way to what is written is replaced by a real folder (never written
through), and files are read only below ROOT without following a link.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import stat
import sys
from typing import IO, Any, Callable, Optional  # noqa: UP035 (runs on the VM's python3 too)

PART_SUFFIX = ".cades-part"
LINK_SUFFIX = ".cades-link"  # a link being made, renamed over its name at once
LINK = -2  # in a send list, the offset that asks for a symbolic link
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
CHUNK = 1 << 20
Progress = Optional[Callable[[str, int], None]]  # noqa: UP045 (evaluated on the VM's python3 too)


def part_name(rel: str) -> str:
    """The hidden partial file beside `rel` (`dir/.NAME.cades-part`)."""
    head, tail = os.path.split(rel)
    return os.path.join(head, "." + tail + PART_SUFFIX)


def excluded(rel: str, patterns: list[str]) -> bool:
    """rsync's way: a pattern without `/` matches the name at any depth; one with `/` matches the path."""
    name = rel.rsplit("/", 1)[-1]
    for pat in patterns:
        if "/" in pat.strip("/"):
            if fnmatch.fnmatchcase(rel, pat.strip("/")):
                return True
        elif fnmatch.fnmatchcase(name, pat.rstrip("/")):
            return True
    return False


def inside(root: str, rel: str, seen: dict[str, str] | None = None) -> str:
    """`root/rel`, refusing absolute paths, `..` and a parent folder that resolves outside ROOT (a symlink).
    `seen` (folder -> real path) spares checking a folder again within one stream."""
    parts = rel.split("/")
    if not rel or os.path.isabs(rel) or ".." in parts or "\\" in rel:
        raise ValueError("refused path outside the destination: " + repr(rel))
    path = os.path.join(root, *parts)
    folder = os.path.dirname(path)
    checked = seen if seen is not None else {}
    if folder not in checked:
        real_root = checked.get(root) or os.path.realpath(root)
        parent = os.path.realpath(folder)
        if parent != real_root and not parent.startswith(real_root.rstrip(os.sep) + os.sep):
            raise ValueError("refused path outside the destination: " + repr(rel))
        checked[root], checked[folder] = real_root, parent
    return path


def _checked(rel: str) -> list[str]:
    parts = rel.split("/")
    if not rel or os.path.isabs(rel) or ".." in parts or "\\" in rel:
        raise ValueError("refused path outside the destination: " + repr(rel))
    return [p for p in parts if p not in ("", ".")]


def real_dir(root: str, rel: str, seen: dict[str, str]) -> str:
    """`root/rel` made a real folder, with every folder on the way below ROOT: a symbolic link there is replaced by
    a folder (as rsync does), so nothing is ever written through it. `seen` remembers folders done in one stream."""
    if "\0" + root not in seen:  # ROOT itself: the path the user gave (made when missing; a link there followed)
        os.makedirs(root, exist_ok=True)
        seen["\0" + root] = root
    path = root
    for name in _checked(rel) if rel else []:
        path = os.path.join(path, name)
        if "\0" + path in seen:
            continue
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            os.mkdir(path)
        else:
            if stat.S_ISLNK(st.st_mode):
                os.unlink(path)
                os.mkdir(path)
            elif not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(20, "a file has the name of a folder to make", rel)
        seen["\0" + path] = path
    return path


def dest_path(root: str, rel: str, seen: dict[str, str]) -> str:
    """Where `rel` is written below ROOT: its folders real ones (`real_dir`), never a link's target."""
    parts = _checked(rel)
    if not parts:
        raise ValueError("refused path outside the destination: " + repr(rel))
    return os.path.join(real_dir(root, "/".join(parts[:-1]), seen), parts[-1])


def stat_tree(root: str, rels: list[str] | None, patterns: list[str]) -> dict[str, Any]:
    """What is at ROOT: kind, and (for a folder) its files `{rel: [size, mtime_ns, mode]}`, folders and partials
    `{rel: size}` — every file under it (`rels` None) or only those named."""
    out: dict[str, Any] = {"kind": "missing", "root": os.path.abspath(root), "files": {}, "dirs": [], "parts": {},
                           "links": {}}
    try:
        st = os.stat(root)
    except OSError:
        return out
    if not os.path.isdir(root):
        out["kind"] = "file" if os.path.isfile(root) else "other"
        out["files"][""] = [st.st_size, st.st_mtime_ns, st.st_mode & 0o777]
        return out
    out["kind"] = "dir"
    if rels is not None:
        for rel in rels:
            for name, key in ((rel, "files"), (part_name(rel), "parts")):
                try:
                    s = os.lstat(os.path.join(root, name))
                except OSError:
                    continue
                if stat.S_ISREG(s.st_mode):
                    out[key][rel] = [s.st_size, s.st_mtime_ns, s.st_mode & 0o777] if key == "files" else s.st_size
                elif key == "files" and stat.S_ISDIR(s.st_mode):
                    out["dirs"].append(rel)
                elif key == "files" and stat.S_ISLNK(s.st_mode):
                    with contextlib.suppress(OSError):
                        out["links"][rel] = [os.readlink(os.path.join(root, name)), s.st_mtime_ns]
        return out
    _walk(root, "", patterns, out)
    return out


def _walk(top: str, prefix: str, patterns: list[str], out: dict[str, Any]) -> None:
    try:
        entries = list(os.scandir(top))
    except OSError:
        return
    for e in entries:
        rel = prefix + e.name
        if e.name.endswith(PART_SUFFIX) and e.name.startswith("."):
            with contextlib.suppress(OSError):
                if e.is_file(follow_symlinks=False):
                    out["parts"][prefix + e.name[1:-len(PART_SUFFIX)]] = e.stat(follow_symlinks=False).st_size
            continue
        if e.name.endswith(LINK_SUFFIX) and e.name.startswith("."):
            continue
        if patterns and excluded(rel, patterns):
            continue
        try:
            if e.is_dir(follow_symlinks=False):
                out["dirs"].append(rel)
                _walk(e.path, rel + "/", patterns, out)
            elif e.is_file(follow_symlinks=False):
                s = e.stat(follow_symlinks=False)
                out["files"][rel] = [s.st_size, s.st_mtime_ns, s.st_mode & 0o777]
            elif e.is_symlink():  # copied as a link (its target text), never followed
                out["links"][rel] = [os.readlink(e.path), e.stat(follow_symlinks=False).st_mtime_ns]
        except OSError:
            continue


def file_hash(path: str, length: int = -1, start: Any = None) -> Any:
    """SHA-256 of the first `length` bytes of `path` (all of it when -1); `start` continues a hash object."""
    h = start if start is not None else hashlib.sha256()
    with open(path, "rb") as f:
        left = length
        while left != 0:
            block = f.read(CHUNK if left < 0 else min(CHUNK, left))
            if not block:
                break
            h.update(block)
            left -= len(block)
    return h


class Hasher:
    """SHA-256 fed from the data loop; for a large file it hashes in a thread of its own (hashlib lets go of the
    GIL), side by side with the reads and writes."""

    def __init__(self, start: Any = None, threaded: bool = False) -> None:
        self.h = start if start is not None else hashlib.sha256()
        self._q: Any = None
        if threaded:
            import queue
            import threading

            self._q = queue.Queue(8)
            self._t = threading.Thread(target=self._run, daemon=True)
            self._t.start()

    def _run(self) -> None:
        while True:
            block = self._q.get()
            if block is None:
                return
            self.h.update(block)

    def update(self, block: bytes) -> None:
        if self._q is not None:
            self._q.put(block)
        else:
            self.h.update(block)

    def hexdigest(self) -> str:
        self.close()
        return str(self.h.hexdigest())

    def close(self) -> None:
        if self._q is not None:
            self._q.put(None)
            self._t.join()
            self._q = None


THREADED_FROM = 8 * CHUNK  # files from this size are hashed in a thread beside the copy


def hashes(root: str, asks: list[list[Any]]) -> list[str | None]:
    """For each `[rel, length, part]`: the SHA-256 of that prefix of the file (or of its partial), or None."""
    out: list[str | None] = []
    for rel, length, part in asks:
        try:
            path = inside(root, part_name(rel) if part else rel)
            if part and not stat.S_ISREG(os.lstat(path).st_mode):  # a partial file is never read through a link
                out.append(None)
                continue
            if length >= 0 and os.path.getsize(path) < length:
                out.append(None)
                continue
            out.append(file_hash(path, length).hexdigest())
        except (OSError, ValueError):
            out.append(None)
    return out


def send_files(root: str, files: list[list[Any]], verify: bool, out: IO[bytes], progress: Progress = None,
               stop: Callable[[], bool] = lambda: False, follow: bool = False) -> None:
    """Stream `[src_rel, dst_rel, offset]` files from ROOT as frames; a folder is `[src_rel, dst_rel, -1]`, a
    symbolic link `[src_rel, dst_rel, LINK]` (its target text). A file is read only below ROOT, never through a
    link — but with `follow` (the one file the user named, a link itself: cp copies what it points to, as scp)."""
    seen: dict[str, str] = {}
    for src, dst, off in files:
        if stop():
            return
        if off == LINK:
            out.write((json.dumps(_link_frame(root, src, dst, seen)) + "\n").encode())
            continue
        if off < 0:
            out.write((json.dumps({"d": dst}) + "\n").encode())
            continue
        try:
            path = inside(root, src, seen) if src else root  # ROOT itself: the path the user gave
            f = os.fdopen(os.open(path, os.O_RDONLY | (NOFOLLOW if src and not follow else 0)), "rb")
        except (OSError, ValueError) as exc:
            why = "a symbolic link or outside the folder" if not isinstance(exc, OSError) or exc.errno == 40 else (
                exc.strerror or str(exc))
            out.write((json.dumps({"e": dst, "why": why}) + "\n").encode())
            continue
        with f:
            st = os.fstat(f.fileno())
            off = off if off <= st.st_size else 0
            header = {"p": dst, "n": st.st_size, "o": off, "t": st.st_mtime_ns, "m": st.st_mode & 0o777}
            out.write((json.dumps(header) + "\n").encode())
            h = Hasher(file_hash(path, off) if off else None, st.st_size - off >= THREADED_FROM) if verify else None
            try:
                short = _send_data(f, off, st.st_size, dst, h, out, progress, stop)
            finally:
                if h is not None:
                    h.close()
            if short is None:
                return
            out.write(b"!\n" if short else ((h.hexdigest() if h is not None else "-") + "\n").encode())
    out.write(b'{"end": true}\n')
    out.flush()


def _link_frame(root: str, src: str, dst: str, seen: dict[str, str]) -> dict[str, Any]:
    try:
        path = inside(root, src, seen)
        return {"l": dst, "t": os.readlink(path), "m": os.lstat(path).st_mtime_ns}
    except (OSError, ValueError) as exc:
        return {"e": dst, "why": str(exc) if isinstance(exc, ValueError) else (exc.strerror or str(exc))}


def _send_data(f: IO[bytes], off: int, size: int, dst: str, h: Hasher | None, out: IO[bytes], progress: Progress,
               stop: Callable[[], bool]) -> bool | None:
    """The bytes from `off` to `size`; whether the file shrank meanwhile (padded), None when stopped."""
    f.seek(off)
    left, short = size - off, False
    while left > 0:
        block = f.read(min(CHUNK, left))
        if not block:  # the file shrank while being sent: pad, and say so in the trailer
            block, short = b"\0" * min(CHUNK, left), True
        if h is not None:
            h.update(block)
        out.write(block)
        left -= len(block)
        if progress is not None:
            progress(dst, len(block))
        if stop():
            return None
    return short


def recv_files(root: str, inp: IO[bytes], report: Callable[[dict[str, Any]], None], progress: Progress = None,
               allowed: Any | None = None, stop: Callable[[], bool] = lambda: False) -> bool:
    """Write frames from `inp` under ROOT; `report({p, ok, why})` per file (`l` set for a link). True when the
    stream ended cleanly (False: cut short — partial files stay for a resume)."""
    seen: dict[str, str] = {}
    while not stop():
        line = inp.readline()
        if not line.endswith(b"\n"):
            return False
        head = json.loads(line)
        if head.get("end"):
            return True
        rel = head.get("p") or head.get("d") or head.get("l") or head.get("e") or ""
        if allowed is not None and rel not in allowed:
            raise ValueError("the peer sent a file not asked for: " + repr(rel))
        if "e" in head:
            report({"p": rel, "ok": False, "why": head.get("why", "cannot be read")})
        elif "d" in head:
            real_dir(root, rel, seen)
        elif "l" in head:
            report(_recv_link(root, head, seen))
        elif not _recv_one(root, head, inp, report, progress, stop, seen):
            return False
    return False


def _recv_one(root: str, head: dict[str, Any], inp: IO[bytes], report: Callable[[dict[str, Any]], None],
              progress: Progress, stop: Callable[[], bool], seen: dict[str, str]) -> bool:
    rel, size, start = head["p"], head["n"], head["o"]
    final = dest_path(root, rel, seen)
    part = os.path.join(os.path.dirname(final), "." + os.path.basename(final) + PART_SUFFIX)
    why = ""
    fd = _open_part(part)
    with os.fdopen(fd, "r+b") as f:
        have = os.fstat(fd).st_size
        if have < start:
            why = "the partial file changed since it was checked"
        elif have > start:
            f.truncate(start)
        h = Hasher(file_hash(part, start) if start and not why else None, size - start >= THREADED_FROM)
        try:
            f.seek(start)
            left = size - start
            while left > 0:
                block = inp.read(min(CHUNK, left))
                if not block:
                    return False  # cut: what arrived stays in the partial
                if not why:
                    f.write(block)
                    h.update(block)
                left -= len(block)
                if progress is not None:
                    progress(rel, len(block))
                if stop():
                    return False
        finally:
            h.close()
    return _finish(head, inp, report, part, final, why, h)


def _open_part(part: str) -> int:
    """The partial file, never through a symbolic link of that name (one is removed, and the file started anew)."""
    if os.path.islink(part):
        os.unlink(part)
    return os.open(part, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o600)  # O_NOFOLLOW: one planted since fails


def _recv_link(root: str, head: dict[str, Any], seen: dict[str, str]) -> dict[str, Any]:
    """Make the symbolic link (its target text as sent) beside its name, then rename it over whatever is there —
    a file or another link is replaced, never written through; a folder of that name stays (said)."""
    rel, target = head["l"], head["t"]
    path = dest_path(root, rel, seen)
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + LINK_SUFFIX)
    try:
        _unlink(tmp)
        os.symlink(target, tmp)
        if os.utime in os.supports_follow_symlinks:
            os.utime(tmp, ns=(head["m"], head["m"]), follow_symlinks=False)
        os.replace(tmp, path)
    except OSError as exc:
        _unlink(tmp)
        why = "a folder has that name" if os.path.isdir(path) and not os.path.islink(path) else (
            exc.strerror or str(exc))
        return {"p": rel, "l": True, "ok": False, "why": why + " (" + rel + ")"}
    return {"p": rel, "l": True, "ok": True, "why": ""}


def _finish(head: dict[str, Any], inp: IO[bytes], report: Callable[[dict[str, Any]], None], part: str, final: str,
            why: str, h: Hasher) -> bool:
    """The trailer: the sender's SHA-256 against ours; then mode, mtime and the rename, or the partial dropped."""
    rel = head["p"]
    trailer = inp.readline()
    if not trailer.endswith(b"\n"):
        return False
    sent = trailer.strip().decode()
    if not why and sent == "!":
        why = "the file changed while it was read"
    elif not why and sent != "-" and sent != h.hexdigest():
        why = "SHA-256 mismatch (sent " + sent[:12] + "…, received " + h.hexdigest()[:12] + "…)"
    if why:
        _unlink(part)  # never trusted again: the next run starts this file over
        report({"p": rel, "ok": False, "why": why})
        return True
    os.chmod(part, head["m"] or 0o644)
    os.utime(part, ns=(head["t"], head["t"]))
    try:
        os.replace(part, final)
    except OSError as exc:  # a folder has that name, say
        report({"p": rel, "ok": False, "why": (exc.strerror or str(exc)) + " (" + rel + ")"})
        return True
    report({"p": rel, "ok": True, "why": ""})
    return True


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def delete(root: str, files: list[str], dirs: list[str]) -> dict[str, list[str]]:
    """Remove these files, then these folders when empty (deepest first), all inside ROOT."""
    done: list[str] = []
    kept: list[str] = []
    for rel in files:
        try:
            os.unlink(inside(root, rel))
            done.append(rel)
        except (OSError, ValueError) as exc:
            kept.append(rel + ": " + str(exc))
    for rel in sorted(dirs, key=lambda r: -r.count("/")):
        try:
            os.rmdir(inside(root, rel))
            done.append(rel + "/")
        except (OSError, ValueError) as exc:
            kept.append(rel + "/: " + str(exc))
    return {"deleted": done, "kept": kept}


def expand(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path or "~"))


def big_pipes(*fds: int) -> None:
    """Pipes of 1 MiB (Linux) instead of 64 KiB: fewer wake-ups between us and ssh/sshd per MiB moved."""
    if sys.platform == "win32":  # no fcntl (a Windows laptop's side of a local stream)
        return
    try:
        import fcntl

        for fd in fds:
            fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), CHUNK)
    except (ImportError, OSError, ValueError):
        pass


def main(argv: list[str]) -> int:
    mode, root = argv[0], expand(argv[1])
    if mode in ("send", "recv"):
        big_pipes(0, 1)
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    if mode == "recv":
        def report(r: dict[str, Any]) -> None:
            out.write((json.dumps(r) + "\n").encode())  # flushed when the buffer fills, and at the end
        clean = recv_files(root, inp, report)
        out.flush()
        return 0 if clean else 3
    ask = json.loads(inp.readline() or "null")
    if mode == "stat":
        result: Any = stat_tree(root, ask["rels"], ask["exclude"])
    elif mode == "hash":
        result = hashes(root, ask)
    elif mode == "send":
        send_files(root, ask["files"], ask["verify"], out, follow=bool(ask.get("follow")))
        return 0
    elif mode == "delete":
        result = delete(root, ask["files"], ask["dirs"])
    else:
        return 2
    out.write((json.dumps(result) + "\n").encode())
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
