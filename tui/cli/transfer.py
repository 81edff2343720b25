"""`cp` and `sync`: files between here and an instance (`NAME:path`, scp's form) over the app's verified
connection, with a progress bar on a terminal, resume of cut transfers and SHA-256 checks (tui.core.transfer)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from tui.cli.common import EXIT_FAIL, EXIT_OK, Context, err, say
from tui.core.hints import command

if TYPE_CHECKING:
    from tui.cli.parser import Commands
    from tui.core.api import Engine
    from tui.core.transfer.models import TransferProgress, TransferRequest, TransferSummary


def add_parsers(commands: Commands) -> None:
    cp = _common(commands.add("cp", "copy a file (or a folder with -r) to or from an instance: cp SRC DST, one of "
                                    "them NAME:path (~ and relative paths are from the VM's home)", cmd_cp))
    cp.add_argument("-r", "--recursive", action="store_true", help="copy a folder and everything in it")
    sy = _common(commands.add("sync", "make folder DST hold what folder SRC holds, skipping unchanged files "
                                      "(size and modification time): sync LOCAL_DIR NAME:DIR, or back", cmd_sync))
    sy.add_argument("--delete", action="store_true", help="delete files in DST that are not in SRC (listed)")
    sy.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                    help="leave out matching files and folders (a name at any depth, or a path with /); repeatable")
    sy.add_argument("--checksum", action="store_true", help="compare SHA-256 instead of size and time")


def _common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from tui.cli.parser import host_key_fingerprint

    p.add_argument("src", metavar="SRC", help="a local path or NAME:path")
    p.add_argument("dst", metavar="DST", help="a local path or NAME:path")
    p.add_argument("--no-verify", action="store_true", help="skip the SHA-256 check of each file at the end")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--accept-host-key", metavar="SHA256:...", default=None, type=host_key_fingerprint,
                   help="trust this host key fingerprint when the console log does not pin it (scripts)")
    p.set_defaults(name="")
    return p


def cmd_cp(args: argparse.Namespace, ctx: Context) -> int:
    from tui.core.transfer.models import TransferRequest, parse_endpoint

    req = TransferRequest("cp", parse_endpoint(args.src), parse_endpoint(args.dst), recursive=args.recursive,
                          verify=not args.no_verify)
    return _run(args, ctx, req)


def cmd_sync(args: argparse.Namespace, ctx: Context) -> int:
    from tui.core.transfer.models import TransferRequest, parse_endpoint

    req = TransferRequest("sync", parse_endpoint(args.src), parse_endpoint(args.dst), delete=args.delete,
                          exclude=tuple(args.exclude), checksum=args.checksum, verify=not args.no_verify)
    return _run(args, ctx, req)


def _run(args: argparse.Namespace, ctx: Context, req: TransferRequest) -> int:
    from tui.cli.runner import with_engine

    req.remote_side()  # both local or both remote: refused before asking the cloud
    bar = Bar() if sys.stderr.isatty() else None

    async def body(engine: Engine, _printer: object) -> int:
        try:
            summary = await engine.transfers.run(req, bar, say)
        finally:
            if bar is not None:
                bar.clear()
        if args.json:
            from dataclasses import asdict

            ctx.json(asdict(summary))
        else:
            ctx.print(summary_line(summary))
        for line in summary.failed:
            err(f"not transferred: {line} — run the same command again to retry it")
        return EXIT_FAIL if summary.failed else EXIT_OK

    again = command(*(["cp", "-r"] if req.kind == "cp" and req.recursive else [req.kind]), args.src, args.dst)
    return with_engine(args, ctx, body, f"Transfer interrupted; partial files are kept: `{again}` resumes it")


def summary_line(s: TransferSummary) -> str:
    """`N files, X transferred, Y skipped` with sizes and the time humanized."""
    from tui.core.units import plural

    size = _size(s.bytes)
    parts = [plural(s.files, "file"), f"{s.transferred} transferred ({size}"
             + (f", {_size(s.resumed)} resumed" if s.resumed else "") + ")", f"{s.skipped} skipped"]
    if s.links:  # symbolic links, copied as links
        parts.append(f"{plural(s.links, 'link')} ({s.links_copied} copied)")
    if s.deleted:
        parts.append(f"{len(s.deleted)} deleted")
    if s.failed:
        parts.append(f"{len(s.failed)} failed")
    rate = f", {_size(int(s.bytes / s.seconds))}/s" if s.bytes and s.seconds > 0 else ""
    return ", ".join(parts) + f" in {_seconds(s.seconds)}{rate}."


def _size(n: int) -> str:
    import humanize

    return str(humanize.naturalsize(n, binary=True))


def _seconds(s: float) -> str:
    import humanize

    return f"{s:.1f} s" if s < 60 else str(humanize.precisedelta(s, minimum_unit="seconds", format="%0.0f"))


class Bar:
    """One line on stderr, redrawn in place: the file, its bytes, the whole transfer's bytes, rate and ETA."""

    def __init__(self) -> None:
        self._shown = False
        self._last = 0.0

    def __call__(self, p: TransferProgress) -> None:
        import shutil

        now = time.monotonic()
        if now - self._last < 0.2 and p.file_done < p.file_size:
            return
        self._last = now
        width = shutil.get_terminal_size((80, 24)).columns - 1
        pct = 100 * p.done // p.total if p.total else 100
        eta = f"ETA {_seconds(p.eta)}" if p.eta is not None else ""
        tail = (f" {pct:3d}% {_size(p.done)}/{_size(p.total)} {_size(int(p.rate))}/s {eta}"
                f" [{p.files_done}/{p.files_total}]")
        name = p.path if len(p.path) + len(tail) <= width else "…" + p.path[-(width - len(tail) - 1):]
        sys.stderr.write("\r" + (name + tail)[:width].ljust(width))
        sys.stderr.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            sys.stderr.write("\r" + " " * (shutil_width() - 1) + "\r")
            sys.stderr.flush()


def shutil_width() -> int:
    import shutil

    return shutil.get_terminal_size((80, 24)).columns
