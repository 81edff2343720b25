"""What every entry point does first — the full-screen app and each command alike: send library warnings to the
app's log file, read the profile, and (with --demo) point it at the embedded sandbox cloud.

Kept light on purpose: the app's first frame waits for this module and nothing heavier (no models, no cloud).
"""

from __future__ import annotations

import argparse
import logging
import sys

from tui.core import paths
from tui.core.config import ConfigError, Settings, load_settings
from tui.core.demo import LazyDemo, host_note

EXIT_USAGE = 2


def setup_logging() -> None:
    """Library warnings (keystoneauth, asyncssh, ...) go to the app's log file, never onto the terminal or the
    full-screen app. Only warnings and errors: request bodies (which may carry secrets) are never logged."""
    root = logging.getLogger()
    if any(getattr(h, "_cades", False) for h in root.handlers):
        return
    try:
        path = paths.ensure_private_dir(paths.state_dir()) / "cades-tui.log"
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    except OSError:
        handler = logging.NullHandler()
    handler.setLevel(logging.WARNING)
    handler._cades = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def err(message: str) -> None:
    print(f"cades-tui: error: {message}", file=sys.stderr)


def prepare(args: argparse.Namespace) -> tuple[Settings, LazyDemo | None] | int:
    """The settings to run with (and the demo sandbox, started on first use), or an exit code after a one-line
    error on stderr."""
    setup_logging()
    try:
        settings = load_settings(getattr(args, "config", None), getattr(args, "cloud", None))
    except ConfigError as exc:
        err(str(exc))
        return EXIT_USAGE
    demo = None
    if getattr(args, "demo", False):
        demo = LazyDemo()
        settings = settings.with_cloud("sandbox", str(demo.clouds_yaml))
        if note := host_note():  # Windows: the cloud panes work, the SSH VMs need WSL
            print(f"cades-tui: note: {note}", file=sys.stderr)
    return settings, demo
