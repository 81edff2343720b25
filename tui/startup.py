"""What every entry point does first — the full-screen app and each command alike: send library warnings to the
app's log file, read the profile, and (with --demo) point it at the embedded sandbox cloud.

Kept light on purpose: the app's first frame waits for this module and nothing heavier (no models, no cloud).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tui.core import hints, paths
from tui.core.config import ConfigError, Settings, load_settings
from tui.core.demo import DemoCloud, LazyDemo, host_note

EXIT_USAGE = 2


class _Masked(logging.Formatter):
    """Log lines with their secrets masked (token URLs, `password: x`, ...), as the command log writes commands."""

    def format(self, record: logging.LogRecord) -> str:
        from tui.core.masking import mask_secrets

        return mask_secrets(super().format(record))


def setup_logging() -> Path | None:
    """The app's log file, `cades-tui.log` in the state dir (private): cades-tui's own records from INFO up — every
    action started, every notification, every failure — and library warnings (keystoneauth, asyncssh, ...), never
    onto the terminal or the full-screen app. Libraries log nothing below warnings there (request bodies may carry
    secrets), and every line is masked. Returns the file (None when it cannot be written)."""
    root = logging.getLogger()
    try:
        path: Path | None = paths.ensure_private_dir(paths.state_dir()) / "cades-tui.log"
    except OSError:
        path = None
    for old in [h for h in root.handlers if getattr(h, "_cades", False)]:
        if getattr(old, "baseFilename", None) == str(path):
            return path
        root.removeHandler(old)  # another state dir (a test, a profile switch): follow it
        old.close()
    handler: logging.Handler = logging.NullHandler()
    if path is not None:
        try:
            handler = logging.FileHandler(path, encoding="utf-8")
        except OSError:
            path = None
    handler.setFormatter(_Masked("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    handler._cades = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # libraries: warnings and errors only
    logging.captureWarnings(True)  # Python warnings too (asyncssh's "DSA is deprecated"): the log, not the terminal
    logging.getLogger("tui").setLevel(logging.INFO)
    return path


def err(message: str) -> None:
    print(f"cades-tui: error: {message}", file=sys.stderr)


def start_sandbox(root: Path) -> DemoCloud:
    """The demo's sandbox cloud in `root`, seeded with the demo's instance and started (the core never imports the
    sandbox: it is handed this)."""
    from tui.sandbox import Sandbox

    sandbox = Sandbox(root, seed_demo=True)
    sandbox.start()
    return sandbox


def prepare(args: argparse.Namespace) -> tuple[Settings, LazyDemo | None] | int:
    """The settings to run with (and the demo sandbox, started on first use), or an exit code after a one-line
    error on stderr."""
    setup_logging()
    hints.set_invocation(demo=bool(getattr(args, "demo", False)), config=getattr(args, "config", None),
                         cloud=getattr(args, "cloud", None))
    try:
        settings = load_settings(getattr(args, "config", None), getattr(args, "cloud", None))
    except ConfigError as exc:
        err(str(exc))
        return EXIT_USAGE
    demo = None
    if getattr(args, "demo", False):
        demo = LazyDemo(start_sandbox)
        settings = settings.with_cloud("sandbox", str(demo.clouds_yaml))
        if note := host_note():  # Windows: the cloud panes work, the SSH VMs need WSL
            print(f"cades-tui: note: {note}", file=sys.stderr)
    return settings, demo
