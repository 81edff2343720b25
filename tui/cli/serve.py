"""`sandbox`: the sandbox cloud alone, in the foreground (no profile, no cloud of its own)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.cli.parser import Commands


def add_parsers(commands: Commands) -> None:
    s = commands.add("sandbox", "run the sandbox cloud in the foreground (Ctrl+C stops it)", cmd_sandbox, raw=True)
    s.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    s.add_argument("--state-dir", metavar="DIR", help="where the sandbox keeps its state (default: a fresh temp dir)")


def cmd_sandbox(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from tui.cli.common import EXIT_USAGE, err
    from tui.sandbox import serve
    from tui.startup import setup_logging

    if not 0 <= args.port <= 65535:
        err(f"--port {args.port}: expected a TCP port 1-65535, or 0 for any free one — or leave it out")
        return EXIT_USAGE
    if args.state_dir and Path(args.state_dir).expanduser().exists() and not Path(args.state_dir).expanduser().is_dir():
        err(f"--state-dir {args.state_dir}: not a folder — give a folder (created when missing)")
        return EXIT_USAGE
    setup_logging()
    state_dir = Path(args.state_dir).expanduser() if args.state_dir else Path(tempfile.mkdtemp(prefix="cades-sandbox-"))
    return int(serve(args.port, state_dir))
