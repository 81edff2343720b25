"""Entry point: parse arguments -> the full-screen app, or one headless command (`tui.cli.dispatch`)."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tui.cli.parser import parse_args

if TYPE_CHECKING:
    from textual.app import App

    from tui.core.api import Engine
    from tui.core.demo import LazyDemo
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
        from tui.core.cloud.signin import ask_through
        from tui.core.engine import CoreEngine, open_cloud

        # a password or TOTP passcode clouds.yaml does not hold is asked for in a dialog (the SecretWanted event)
        return CoreEngine(settings, open_cloud(settings, ask_through(emit)), emit)

    stops: QuitOnSignals | None = None
    try:
        # the first listing on its way: the Instances table is part of the first frame, ready for it
        app = CadesApp(settings, build_engine, table_first=prefetch is not None and prefetch.started)
        stops = QuitOnSignals(app, demo)
        app.run()
        return int(app.return_code or 0)
    finally:
        if stops is not None:
            stops.out = True  # a signal from now on waits for this cleanup (the timer stays the last resort)
        if demo is not None:
            demo.stop()  # the demo's SSH hosts end with the app, on every way out
        if stops is not None:
            stops.restore()


class QuitOnSignals:
    """SIGTERM, SIGHUP (the terminal was closed) and SIGINT end the app the way quitting does, without asking:
    its connections and tunnels close, then `_run_app`'s `finally` stops the demo's SSH hosts. Python's default
    for SIGTERM and SIGHUP would end the process on the spot, leaving the demo's sshd listening.

    Should the app not be out within GRACE_S (a terminal gone mid-write), or a second signal come, the demo is
    stopped from another thread and the process ends with 128 + signal. Installed in the main thread only (signals
    reach it alone); on Windows, SIGINT and SIGBREAK."""

    GRACE_S = 15.0  # the app's own quit closes tunnels and connections (≤ 10 s), then the demo stops

    def __init__(self, app: App[Any], demo: LazyDemo | None) -> None:
        import signal
        import threading

        from tui.core.platform import stop_signals

        self.app, self.demo = app, demo
        self.out = False  # the app has returned: the cleanup runs
        self.received: list[int] = []
        self._timers: list[threading.Timer] = []
        self._previous: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handler) for sig in stop_signals()}

    def restore(self) -> None:
        """The previous handlers back, and no last resort pending (the app is out, the demo stopped)."""
        import signal

        for timer in self._timers:
            timer.cancel()
        for sig, old in self._previous.items():
            signal.signal(sig, old)
        self._previous = {}

    def _handler(self, signum: int, _frame: object) -> None:
        import asyncio
        import threading

        code = 128 + signum
        if self.received:  # a second signal: end now
            threading.Thread(target=self._hard_exit, args=(code,), daemon=True).start()
            return
        self.received.append(signum)
        timer = threading.Timer(self.GRACE_S, self._hard_exit, args=(code,))
        timer.daemon = True
        timer.start()
        self._timers.append(timer)
        if self.out:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the app's loop not running yet: unwind (the `finally` stops the demo)
            raise SystemExit(code) from None
        loop.call_soon_threadsafe(lambda: self.app.exit(return_code=code))

    def _hard_exit(self, code: int) -> None:
        import os

        if self.demo is not None:
            self.demo.stop()  # from this thread: waits for a stop under way in the main thread, then returns
        os._exit(code)


def route_warnings() -> None:
    """Python warnings (a library's DeprecationWarning, cryptography's "DSA is deprecated" on importing asyncssh,
    ...) go to the app log as records of the `py.warnings` logger, never onto the user's terminal:
    `tui.startup.setup_logging` gives the root logger the log file. Until it has, a warning is dropped rather than
    printed (the NullHandler keeps logging's last-resort handler, which writes to stderr, out of it)."""
    import logging

    logging.captureWarnings(True)
    logger = logging.getLogger("py.warnings")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())


def main(argv: Sequence[str] | None = None) -> int:
    route_warnings()
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
