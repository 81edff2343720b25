"""Entry point: parse arguments -> load settings -> build services -> run the App or a headless command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from tui import __version__

if TYPE_CHECKING:
    from tui.core.api import Engine
    from tui.core.events import Emit

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


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


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    p = argparse.ArgumentParser(
        prog="cades-tui", parents=[common],
        description="Set up and run a Python analytics (Jupyter) server on an OpenStack cloud, from one terminal app. "
                    "Without a command, opens the full-screen app.",
        epilog="Quick try: cades-tui --demo",
    )
    p.add_argument("--version", action="version", version=f"cades-tui {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def cmd(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_, parents=[common])

    s = cmd("sandbox", "run the sandbox cloud in the foreground (Ctrl+C stops it)")
    s.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    s.add_argument("--state-dir", metavar="DIR", help="where the sandbox keeps its state (default: a fresh temp dir)")

    for name, help_ in (("list", "list instances"), ("flavors", "list flavors with the guide's m1/c1 advice"),
                        ("images", "list images"), ("quota", "show quota usage")):
        cmd(name, help_).add_argument("--json", action="store_true", help="print JSON")

    la = cmd("launch", "launch an instance (the guide's step 1)")
    la.add_argument("name")
    la.add_argument("--flavor", default="", help="default: the profile's, else the smallest m1.* that fits")
    la.add_argument("--image", default="", help="default: the profile's, else the newest Ubuntu")
    la.add_argument("--volume-size", type=int, default=0, metavar="GB", help="boot volume size (default 16)")
    la.add_argument("--key", default="", help="key pair name (default: the app's own key pair)")
    la.add_argument("--network", default="", help="default: the profile's, else the project's network")
    la.add_argument("--delete-volume-on-termination", action="store_true",
                    help="delete the boot volume with the instance (default: keep it)")
    la.add_argument("--wait", action="store_true", help="wait until ACTIVE with an address")
    la.add_argument("--json", action="store_true")

    rs = cmd("resize", "resize an instance to another flavor")
    rs.add_argument("name")
    rs.add_argument("flavor", nargs="?", default="")
    grp = rs.add_mutually_exclusive_group()
    grp.add_argument("--confirm", action="store_true", help="confirm a resize waiting in VERIFY_RESIZE")
    grp.add_argument("--revert", action="store_true", help="revert a resize waiting in VERIFY_RESIZE")

    for name, help_ in (("stop", "shut down an instance (keeps its disk)"), ("start", "start a stopped instance"),
                        ("reboot", "reboot an instance"), ("console", "print an instance's console log"),
                        ("show", "show an instance's details")):
        c = cmd(name, help_)
        c.add_argument("name")
        if name == "show":
            c.add_argument("--json", action="store_true")

    d = cmd("delete", "delete an instance")
    d.add_argument("name")
    d.add_argument("--yes", action="store_true", help="do not ask (scripts)")
    d.add_argument("--delete-volumes", action="store_true", help="also delete its boot and attached volumes")

    co = cmd("commands", "the commands run on an instance (secrets masked): read or export the command log")
    co.add_argument("name")
    co.add_argument("-o", "--output", metavar="FILE", default="", help="write the log to FILE")

    kp = cmd("keypair", "list, import or generate key pairs")
    ksub = kp.add_subparsers(dest="keypair_command", metavar="ACTION", required=True)
    ksub.add_parser("list", help="list key pairs", parents=[common]).add_argument("--json", action="store_true")
    ki = ksub.add_parser("import", help="import a public key file", parents=[common])
    ki.add_argument("file")
    ki.add_argument("--name", default="", help="key pair name (default: the file's stem)")
    kg = ksub.add_parser("generate", help="generate an ed25519 key pair and import it", parents=[common])
    kg.add_argument("name")

    vo = cmd("volume", "storage volumes")
    vsub = vo.add_subparsers(dest="volume_command", metavar="ACTION", required=True)
    vsub.add_parser("list", help="list volumes", parents=[common]).add_argument("--json", action="store_true")
    vc = vsub.add_parser("create", help="create (and attach) a volume", parents=[common])
    vc.add_argument("name")
    vc.add_argument("--size", type=int, required=True, metavar="GB")
    vc.add_argument("--attach", metavar="INSTANCE", default="")
    vd = vsub.add_parser("detach", help="detach a volume", parents=[common])
    vd.add_argument("name")
    vx = vsub.add_parser("delete", help="delete a volume", parents=[common])
    vx.add_argument("name")
    vx.add_argument("--yes", action="store_true")
    from tui.cli import remote as cli_remote  # light: parsers only, the remote stack loads when a command runs

    cli_remote.add_parsers(sub, common)
    return p


def run_app(args: argparse.Namespace) -> int:
    """The full-screen app. Starting the demo sandbox and importing openstacksdk happen later, in a worker,
    after the first frame; this path imports nothing of the command-line tools."""
    from tui.startup import prepare

    prepared = prepare(args)
    if isinstance(prepared, int):
        return prepared
    settings, demo = prepared
    from tui.ui.app import CadesApp

    def build_engine(emit: Emit) -> Engine:  # in the app's thread worker, after the first frame
        if demo is not None:
            demo.ensure()
        from tui.core.engine import CoreEngine, open_cloud

        return CoreEngine(settings, open_cloud(settings), emit)

    try:
        app = CadesApp(settings, build_engine)
        app.run()
        return int(app.return_code or 0)
    finally:
        if demo is not None:
            demo.stop()


class _Quiet(argparse.ArgumentParser):
    class Failed(Exception):
        pass

    def error(self, message: str) -> NoReturn:
        raise self.Failed(message)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The bare app (only global options) skips building the ~30 sub-command parsers: a faster first frame.
    Anything else — a command, --help, --version, a typo — goes through the full parser and its messages."""
    try:
        args, rest = common_options(_Quiet).parse_known_args(argv)
    except _Quiet.Failed:
        rest = ["?"]  # the full parser says what is wrong
    if not rest:
        args.command = None
        return args
    return build_parser().parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command is None:
            return run_app(args)
        from tui.cli import cloud as cli  # after parsing: --help and --version stay instant

        return cli.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
