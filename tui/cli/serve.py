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

    from tui.sandbox import serve
    from tui.startup import setup_logging

    setup_logging()
    state_dir = Path(args.state_dir) if args.state_dir else Path(tempfile.mkdtemp(prefix="cades-sandbox-"))
    return int(serve(args.port, state_dir))
