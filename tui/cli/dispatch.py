"""Run one parsed command: the profile (and --demo), the command's handler, and errors as one line and an exit code."""

from __future__ import annotations

import argparse
import sys

from tui.cli.common import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_USAGE, Context, err, quiet_stdout
from tui.core import hints
from tui.startup import prepare


def run(args: argparse.Namespace) -> int:
    """Run `args.handler` (set by the command's group module); the full-screen app is started by __main__."""
    try:
        if args.raw:
            return int(args.handler(args))
        return _run(args)
    except KeyboardInterrupt:
        _flush_or_quiet()
        err("interrupted (Ctrl+C)")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `cades-tui list | head -1`: the reader is gone, nothing more to say
        quiet_stdout()
        return EXIT_FAIL


def _run(args: argparse.Namespace) -> int:
    from tui.core.errors import BadInput, CadesError

    prepared = prepare(args)
    if isinstance(prepared, int):
        hints.set_invocation()
        return prepared
    settings, demo = prepared
    try:
        if demo is not None:
            demo.ensure()
        return int(args.handler(args, Context(settings)))
    except BadInput as exc:  # the error family's kinds (tui.core.errors): bad input exits 2, the rest 1
        err(str(exc))
        return EXIT_USAGE
    except CadesError as exc:
        err(str(exc))
        return EXIT_FAIL
    except OSError as exc:  # a file or folder of ours that cannot be made or written: one line, not a traceback
        where = f" ({exc.filename})" if exc.filename else ""
        err(f"{exc.strerror or exc}{where} — check that folder's permissions and free space")
        return EXIT_FAIL
    finally:
        hints.set_invocation()  # this run's options end with it (tests run many commands in one process)
        if demo is not None:
            demo.stop()


def _flush_or_quiet() -> None:
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        quiet_stdout()
