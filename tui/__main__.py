"""Entry point: parse arguments -> the full-screen app, or one headless command (`tui.cli.dispatch`)."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tui.cli.parser import parse_args

if TYPE_CHECKING:
    from tui.core.api import Engine
    from tui.core.events import Emit


def run_app(args: argparse.Namespace) -> int:
    """The full-screen app. Starting the demo sandbox and importing openstacksdk happen later, in a worker,
    after the first frame; this path imports nothing of the command-line tools but their parser.

    Python's garbage collector is held off until the first frame is on screen (the app turns it back on, then):
    loading Textual and building the screen make ~110 collections, ~15 ms, that find next to nothing to free."""
    gc.disable()
    try:
        return _run_app(args)
    finally:
        gc.enable()


def _run_app(args: argparse.Namespace) -> int:
    from tui.startup import prepare

    prepared = prepare(args)
    if isinstance(prepared, int):
        return prepared
    settings, demo = prepared
    prefetch = None
    if demo is None:  # (the demo's cloud is not up yet: its listing is read once it is, after the first frame)
        from tui.core.cloud.quick import Prefetch

        # The first listing's requests go out now, on the cached token, and wait on the network while Textual
        # loads and draws the first frame.
        prefetch = Prefetch(settings.cloud, settings.clouds_yaml or None)
    from tui.ui.app import CadesApp

    def build_engine(emit: Emit) -> Engine:  # in the app's thread worker, after the first frame
        from tui.core.cloud.quick import first_poll

        if demo is not None:
            demo.ensure()
        first_poll(settings.cloud, settings.clouds_yaml or None, emit, prefetch)  # before openstacksdk loads
        from tui.core.engine import CoreEngine, open_cloud

        return CoreEngine(settings, open_cloud(settings), emit)

    try:
        # the first listing on its way: the Instances table is part of the first frame, ready for it
        app = CadesApp(settings, build_engine, table_first=prefetch is not None and prefetch.started)
        app.run()
        return int(app.return_code or 0)
    finally:
        if demo is not None:
            demo.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from tui.core.remote.sshreap import reap_orphans

    reap_orphans()  # the ssh masters of tunnels whose process was killed (SIGKILL) end with this start
    try:
        if args.command is None:
            return run_app(args)
        from tui.cli.dispatch import run  # after parsing: --help and --version stay instant

        return run(args)
    except KeyboardInterrupt:
        print("cades-tui: interrupted (Ctrl+C)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
