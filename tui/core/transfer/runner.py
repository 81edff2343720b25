"""One transfer from start to summary: resolve both sides, plan, check partial files, stream, delete.

The data moves in a worker thread (the helper's blocking `send_files`/`recv_files` on one side, the VM's helper on
the other); cancelling the task (Ctrl+C) stops it, closes the stream and leaves the partial files for a resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui.core.cloud.base import InvalidInput
from tui.core.transfer import helper
from tui.core.transfer.channel import RemoteEnd, Stream
from tui.core.transfer.models import TransferCut, TransferError, TransferProgress, TransferRequest, TransferSummary
from tui.core.transfer.plan import Item, TransferPlan, make_plan

OPENSSH_FROM = 64 << 20  # bytes to move from which a data stream goes over OpenSSH (a new login costs ~0.3 s)
ProgressFn = Callable[[TransferProgress], None]
STREAMS, MANY_FILES = 2, 256  # streams side by side from this many files on
PATH_ENV = "CADES_TUI_TRANSFER_PATH"  # "asyncssh" or "openssh": force a data path (tests, benchmarks)


class Meter:
    """Bytes moved per file and overall, turned into `TransferProgress` (at most every 0.1 s, and at each file's
    end). Called from the data threads."""

    def __init__(self, items: list[Item], report: ProgressFn | None) -> None:
        self.sizes = {i.dst: i.size for i in items}
        self.file_done = {i.dst: i.offset for i in items}
        self.total = sum(i.size - i.offset for i in items)
        self.done, self.files_done, self.report = 0, 0, report
        self.t0, self._last = time.monotonic(), 0.0
        self._lock = threading.Lock()

    def __call__(self, rel: str, n: int) -> None:
        with self._lock:  # streams side by side count here from their threads
            self.done += n
            got = self.file_done[rel] = self.file_done.get(rel, 0) + n
            size = self.sizes.get(rel, got)
            if got >= size:
                self.files_done += 1
            now = time.monotonic()
            if self.report is None or (now - self._last < 0.1 and got < size):
                return
            self._last = now
        rate = self.done / max(now - self.t0, 1e-6)
        eta = (self.total - self.done) / rate if rate > 0 else None
        self.report(TransferProgress(rel, got, size, self.done, self.total, rate, eta, self.files_done,
                                     len(self.sizes)))


class Transfer:
    def __init__(self, req: TransferRequest, remote: RemoteEnd | None, progress: ProgressFn | None = None,
                 say: Callable[[str], None] = lambda _: None) -> None:
        self._remote, self.req, self.progress, self.say = remote, req, progress, say
        self._local: dict[str, Any] | None = None  # sync: this side's listing, read while connecting
        self._follow = False  # one file named by the user: read through it when it is a link (as scp)
        self.stop = threading.Event()
        self.summary = TransferSummary(src=str(req.src), dst=str(req.dst))

    @property
    def remote(self) -> RemoteEnd:
        assert self._remote is not None, "connect first"
        return self._remote

    @remote.setter
    def remote(self, value: RemoteEnd) -> None:
        self._remote = value

    async def prefetch(self) -> None:
        """sync: list this side's folder (it may be large) while the connection is being made."""
        if self.req.kind == "sync":
            up = self.req.upload
            path = self.req.src.path if up else (self.req.dst.path or ".")
            self._local = await self._stat(False, str(Path(path).expanduser()), None)

    # -- listing -------------------------------------------------------------------------------------------------
    async def _stat(self, remote: bool, root: str, rels: list[str] | None) -> dict[str, Any]:
        ask = {"rels": rels, "exclude": list(self.req.exclude)}
        if remote:
            return dict(await self.remote.call("stat", root, ask))
        return await asyncio.to_thread(helper.stat_tree, root, rels, list(self.req.exclude))

    async def _hash(self, remote: bool, root: str, asks: list[list[Any]]) -> list[str | None]:
        if not asks:
            return []
        if remote:
            return list(await self.remote.call("hash", root, asks))
        return await asyncio.to_thread(helper.hashes, root, asks)

    async def _resolve(self) -> tuple[str, str, list[tuple[str, str]], dict[str, Any], dict[str, Any]]:
        """(source root, destination root, (src rel, dst rel) pairs, source listing, destination listing)."""
        req, up = self.req, self.req.upload
        src_path = str(Path(req.src.path).expanduser()) if up else req.src.path
        dst_path = req.dst.path if up else str(Path(req.dst.path or ".").expanduser())
        if req.kind == "sync":  # two folders: each side listed once (one question to the VM)
            local = self._local or await self._stat(False, src_path if up else dst_path, None)
            theirs = await self._stat(True, dst_path if up else src_path, None)
            top, dtop = (local, theirs) if up else (theirs, local)
        else:
            top = await self._stat(not up, src_path, [])
        if top["kind"] == "missing":
            if up:
                raise InvalidInput(f"{req.src}: no such file or folder", "check the path (a local one)")
            raise TransferError(f"{req.src}: no such file or folder on {req.src.instance}")
        if top["kind"] == "dir" and req.kind == "cp" and not req.recursive:
            raise InvalidInput(f"{req.src} is a folder", "add -r to copy a folder and what it holds")
        if top["kind"] != "dir" and req.kind == "sync":
            raise InvalidInput(f"{req.src} is not a folder", "sync takes two folders; use cp for a file")
        if req.kind == "sync":
            if dtop["kind"] not in ("dir", "missing"):
                raise InvalidInput(f"{req.dst} is a file, not a folder", "sync takes two folders")
            return top["root"], dtop["root"], [(r, r) for r in sorted(top["files"])], top, dtop
        dtop = await self._stat(up, dst_path, [])
        into = dtop["kind"] == "dir" or req.dst.path.endswith(("/", os.sep)) or (up and not req.dst.path)
        join = posixpath if up else os.path  # the destination's paths
        name = (os.path if up else posixpath).basename(top["root"].rstrip("/\\"))
        if top["kind"] != "dir":  # one file
            src_root, s_rel = os.path.split(top["root"]) if up else posixpath.split(top["root"])
            dst_root, d_rel = (dtop["root"], name) if into else join.split(dtop["root"])
            src = {"files": {s_rel: top["files"][""]}, "dirs": []}
            self._follow = True
            return src_root, dst_root, [(s_rel, d_rel)], src, await self._stat(up, dst_root, [d_rel])
        if dtop["kind"] not in ("dir", "missing"):
            raise InvalidInput(f"{req.dst} is a file, not a folder", "give a folder as the destination")
        dst_root = join.join(dtop["root"], name) if req.kind == "cp" and dtop["kind"] == "dir" else dtop["root"]
        src = await self._stat(not up, top["root"], None)
        dst = await self._stat(up, dst_root, None)
        return top["root"], dst_root, [(r, r) for r in sorted(src["files"])], src, dst

    # -- running -------------------------------------------------------------------------------------------------
    async def run(self) -> TransferSummary:
        t0 = time.monotonic()
        req, _up, s = self.req, self.req.upload, self.summary
        src_root, dst_root, pairs, src, dst = await self._resolve()
        plan = make_plan(src, dst, pairs, skip_unchanged=req.kind == "sync", checksum=req.checksum,
                         delete=req.delete)
        await self._check_same_size(plan, src_root, dst_root)
        await self._check_resume(plan, src_root, dst_root)
        s.files, s.skipped = plan.files, len(plan.skipped)
        s.links = len(plan.links) + len(plan.links_skipped)
        if plan.send or plan.dirs or plan.links:
            await self._move(plan, src_root, dst_root)
        if plan.delete_files or plan.delete_dirs:
            await self._delete(plan, dst_root)
        s.seconds = time.monotonic() - t0
        return s

    async def _check_same_size(self, plan: TransferPlan, src_root: str, dst_root: str) -> None:
        """--checksum: files of equal size are skipped when their SHA-256 match on both sides."""
        if not plan.same_size:
            return
        up = self.req.upload
        mine, theirs = await asyncio.gather(
            self._hash(not up, src_root, [[i.src, -1, False] for i in plan.same_size]),
            self._hash(up, dst_root, [[i.dst, -1, False] for i in plan.same_size]))
        for item, a, b in zip(plan.same_size, mine, theirs, strict=True):
            (plan.skipped.append(item.dst) if a is not None and a == b else plan.send.append(item))
        plan.same_size = []

    async def _check_resume(self, plan: TransferPlan, src_root: str, dst_root: str) -> None:
        """A partial file is continued only when its bytes hash like the source's first as many bytes."""
        if not plan.resume:
            return
        up = self.req.upload
        mine, theirs = await asyncio.gather(
            self._hash(not up, src_root, [[i.src, i.offset, False] for i in plan.resume]),
            self._hash(up, dst_root, [[i.dst, i.offset, True] for i in plan.resume]))
        for item, a, b in zip(plan.resume, mine, theirs, strict=True):
            if a is None or a != b:
                self.say(f"{item.dst}: the partial file does not match the source; starting it over")
                item.offset = 0
            else:
                self.summary.resumed += item.offset

    def _use_openssh(self, nbytes: int) -> bool:
        forced = os.environ.get(PATH_ENV, "")
        if forced:
            return forced == "openssh" and self.remote.openssh is not None
        return nbytes >= OPENSSH_FROM and self.remote.openssh is not None and shutil.which("ssh") is not None

    async def _move(self, plan: TransferPlan, src_root: str, dst_root: str) -> None:
        """Stream the files: one stream, or STREAMS side by side when there are many (small) files — the per-file
        work on both ends (open, hash, rename) then overlaps."""
        up, s = self.req.upload, self.summary
        meter = Meter(plan.send, self.progress)
        files = [[i.src, i.dst, i.offset] for i in sorted(plan.send, key=lambda i: i.dst)]
        n = STREAMS if len(files) >= MANY_FILES else 1
        groups = [files[k::n] for k in range(n)]
        groups[0] = [[d, d, -1] for d in plan.dirs] + [[i.src, i.dst, helper.LINK] for i in plan.links] + groups[0]
        results: list[dict[str, Any]] = []
        openssh = self._use_openssh(meter.total)
        streams = [await self.remote.stream("recv" if up else "send", dst_root if up else src_root, openssh)
                   for _ in groups]
        s.via = streams[0].via
        work = self._upload if up else self._download
        loop = asyncio.get_running_loop()
        futs = [loop.run_in_executor(None, work, st, src_root, dst_root, g, meter, results)
                for st, g in zip(streams, groups, strict=True)]
        try:
            await asyncio.shield(asyncio.gather(*futs))
        except BaseException as exc:  # cancelled (Ctrl+C, the view's cancel), or failed: stop both ends
            self._halt(streams)
            for fut in futs:
                with contextlib.suppress(Exception):
                    await fut
            if isinstance(exc, ValueError):  # the other side named a path outside the destination, or garbage
                raise TransferError(f"{self.remote.name}: {exc}; nothing more was written") from exc
            if isinstance(exc, Exception) and not isinstance(exc, TransferError):  # the connection, a disk
                raise TransferCut(f"the transfer stopped: {exc or type(exc).__name__} — run the same command "
                                  "again to resume") from exc
            raise
        s.bytes = meter.done
        s.transferred = sum(1 for r in results if r["ok"] and not r.get("l"))
        s.links_copied = sum(1 for r in results if r["ok"] and r.get("l"))
        s.failed = [f"{r['p']}: {r['why']}" for r in results if not r["ok"]]
        if len(results) < len(plan.send) + len(plan.links):
            raise TransferCut(f"the transfer was cut after {len(results)} of {len(plan.send) + len(plan.links)} "
                              "files and links "
                                "(the connection or the other side stopped) — run the same command again to "
                                "resume")

    def _halt(self, streams: list[Stream]) -> None:
        self.stop.set()
        for st in streams:
            st.close()

    def _upload(self, stream: Stream, src_root: str, dst_root: str, files: list[list[Any]], meter: Meter,
                results: list[dict[str, Any]]) -> None:
        import json

        def read_results() -> None:
            for line in stream.stdout:
                with contextlib.suppress(ValueError):
                    results.append(json.loads(line))

        reader = threading.Thread(target=read_results, daemon=True)
        reader.start()
        try:
            helper.send_files(src_root, files, self.req.verify, stream.stdin, meter, self.stop.is_set, self._follow)
            stream.stdin.close()
        except (BrokenPipeError, ConnectionError, OSError, RuntimeError):
            pass  # the other side went away: what it received stays in its partial files
        reader.join()
        code, err = stream.wait()
        if not self.stop.is_set():
            self.remote.check_exit(code, err)

    def _download(self, stream: Stream, src_root: str, dst_root: str, files: list[list[Any]], meter: Meter,
                  results: list[dict[str, Any]]) -> None:
        import json

        try:
            ask = {"files": files, "verify": self.req.verify, "follow": self._follow}
            stream.stdin.write((json.dumps(ask) + "\n").encode())
            stream.stdin.close()
            os.makedirs(dst_root, exist_ok=True)
            allowed = {f[1] for f in files}
            clean = helper.recv_files(dst_root, stream.stdout, results.append, meter, allowed, self.stop.is_set)
        except (BrokenPipeError, ConnectionError, RuntimeError):
            clean = False
        if not clean:
            stream.close()
        code, err = stream.wait()
        if clean or not self.stop.is_set():
            self.remote.check_exit(code, err)

    async def _delete(self, plan: TransferPlan, dst_root: str) -> None:
        up = self.req.upload
        names = plan.delete_files + [d + "/" for d in plan.delete_dirs]
        self.say(f"Deleting {len(names)} not in the source: {', '.join(names[:20])}"
                 + (f" and {len(names) - 20} more" if len(names) > 20 else ""))
        ask = {"files": plan.delete_files, "dirs": plan.delete_dirs}
        if up:
            done = await self.remote.call("delete", dst_root, ask)
        else:
            done = await asyncio.to_thread(helper.delete, dst_root, ask["files"], ask["dirs"])
        self.summary.deleted = list(done["deleted"])
        for line in done["kept"]:
            self.say(f"not deleted: {line}")
