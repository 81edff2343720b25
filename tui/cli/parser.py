"""The command line: global options, the bare app's quick parse, and the full parser built from the command groups.

Light on purpose: the bare app imports this module only (for `parse_args`), and builds none of the sub-command
parsers. `build_parser` imports each group module in `GROUPS`; a group module keeps its imports light at module
level and defines `add_parsers(commands)`, registering each command with the function that runs it. Adding a
command group is one module and one entry in `GROUPS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from tui import __version__

# The command groups, in the order `cades-tui --help` lists them: modules of `tui.cli`.
GROUPS = ("serve", "catalog", "instances", "keypairs", "volumes", "image", "remote", "transfer", "jupyter", "cluster",
          "forward", "autostop", "status", "sshconfig", "shelve")

EXIT_CODES = ("Exit codes: 0 done; 1 the cloud or the VM refused or failed, or has no such instance, volume, image, "
              "flavor or key pair; 2 bad input refused before asking the cloud (a name, size, port, file, the "
              "profile or clouds.yaml); 130 interrupted by Ctrl+C (143 SIGTERM, 129 SIGHUP)")

Handler = Callable[..., int]
REST = "remote_command"  # the words after `--`, for the commands that take them (`ssh NAME [options] -- CMD`)


def common_options(cls: type[argparse.ArgumentParser] = argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options every command (and the bare app) takes."""
    common = cls(add_help=False)
    g = common.add_argument_group("global options")
    g.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                   help="profile YAML (default: $CADES_TUI_CONFIG, then ~/.config/cades-tui/config.yaml)")
    g.add_argument("--cloud", metavar="NAME", default=argparse.SUPPRESS,
                   help="clouds.yaml entry (default: the profile's, overridden by $OS_CLOUD)")
    g.add_argument("--demo", action="store_true", default=argparse.SUPPRESS,
                   help="use the embedded sandbox cloud (no real cloud needed)")
    return common


class Commands:
    """What a command group registers its commands on: `add` one command (with the function that runs it), or a
    `group` of actions under one command (`cades-tui volume create ...`)."""

    def __init__(self, sub: Any, common: argparse.ArgumentParser) -> None:
        self._sub = sub
        self._common = common

    def add(self, name: str, help_: str, handler: Handler | None, *, raw: bool = False) -> argparse.ArgumentParser:
        """A command. `handler(args, ctx)` runs it; `raw`: `handler(args)` runs before any profile or cloud."""
        p: argparse.ArgumentParser = self._sub.add_parser(name, help=help_, description=help_, parents=[self._common])
        p.set_defaults(handler=handler, raw=raw)
        return p

    def group(self, name: str, help_: str, dest: str) -> Commands:
        p = self.add(name, help_, None)
        return Commands(p.add_subparsers(dest=dest, metavar="ACTION", required=True), self._common)

    @staticmethod
    def json(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--json", action="store_true", help="print JSON")
        return p

    @staticmethod
    def instance(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        """NAME, and the host key option of every command that logs in to the instance."""
        p.add_argument("name", type=name_arg, help="instance name or id")
        p.add_argument("--accept-host-key", metavar="SHA256:...", default=None, type=host_key_fingerprint,
                       help="trust this host key fingerprint when the console log does not pin it (scripts)")
        return p


def name_arg(value: str) -> str:
    """A NAME argument: an empty one ('') is refused here, not sent to the cloud (which answered "'server'")."""
    if not value.strip():
        raise argparse.ArgumentTypeError(f"{value!r} is empty: give a name or id, or leave the option out")
    return value


def host_key_fingerprint(value: str) -> str:
    """An OpenSSH SHA256 fingerprint as `ssh-keygen -lf` prints it: SHA256: and 43 base64 characters."""
    import re

    if not re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}=?", value.strip()):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a host key fingerprint: expected SHA256: and 43 base64 characters, as "
            "`ssh-keygen -lf KEY.pub` prints it (e.g. SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s)")
    return value.strip().rstrip("=")


def build_parser(cls: type[argparse.ArgumentParser] = argparse.ArgumentParser) -> argparse.ArgumentParser:
    common = common_options()
    p = cls(
        prog="cades-tui", parents=[common],
        description="Set up and run a Python analytics (Jupyter) server on an OpenStack cloud, from one terminal app. "
                    "Without a command, opens the full-screen app.",
        epilog=f"Quick try: cades-tui --demo. {EXIT_CODES}.",
    )
    p.add_argument("--version", action="version", version=f"cades-tui {__version__}")
    commands = Commands(p.add_subparsers(dest="command", metavar="COMMAND"), common)
    for group in GROUPS:
        importlib.import_module(f"tui.cli.{group}").add_parsers(commands)
    return p


class _Quiet(argparse.ArgumentParser):
    class Failed(Exception):
        pass

    def error(self, message: str) -> NoReturn:
        raise self.Failed(message)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The bare app (only global options) skips building the ~30 sub-command parsers: a faster first frame.
    Anything else — a command, --help, --version, a typo — goes through the full parser and its messages.

    Everything after the first `--` is the remote command of the commands that take one, so options may come
    after NAME there as everywhere (`ssh NAME --demo -- CMD`)."""
    try:
        args, rest = common_options(_Quiet).parse_known_args(argv)
    except _Quiet.Failed:
        rest = ["?"]  # the full parser says what is wrong
    if not rest:
        args.command = None
        return args
    words = list(argv) if argv is not None else sys.argv[1:]
    if "--" in words:
        cut = words.index("--")
        try:
            args = build_parser(_Quiet).parse_args(words[:cut])
        except _Quiet.Failed:
            pass  # the full parser below says what is wrong
        else:
            if hasattr(args, REST):
                setattr(args, REST, [*getattr(args, REST), *words[cut + 1:]])
                return args
    return build_parser().parse_args(words)
