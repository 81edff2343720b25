"""Commands that work on an instance over SSH: `setup` (the guide's steps 2-3), `ssh`, `commands` (the log)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from tui.cli.common import EXIT_FAIL, EXIT_OK, Context, err, say, yes
from tui.cli.parser import REST, name_arg
from tui.cli.runner import engine_command
from tui.core.hints import command

if TYPE_CHECKING:
    from tui.cli.parser import Commands
    from tui.cli.printer import Printer
    from tui.core.api import Engine
    from tui.core.models import Instance


def add_parsers(commands: Commands) -> None:
    se = commands.instance(commands.add(
        "setup", "install Python + Jupyter on an instance (the guide's steps 2-3), every line shown", cmd_setup))
    se.add_argument("--dry-run", action="store_true", help="print the exact commands instead of running them")
    se.add_argument("--format-empty-volume", action="store_true",
                    help="format an attached, empty data volume without asking")
    sh = commands.instance(commands.add(
        "ssh", "a shell on an instance (same key and host keys as the app), or run COMMAND", cmd_ssh))
    sh.add_argument(REST, nargs="*", metavar="-- COMMAND",
                    help="run COMMAND (everything after --) instead of a shell and return its exit code")
    co = commands.add("commands", "the commands run on an instance (secrets masked): read or export the log",
                      cmd_commands)
    co.add_argument("name", type=name_arg)
    co.add_argument("-o", "--output", metavar="FILE", default="", help="write the log to FILE")


def cmd_setup(args: argparse.Namespace, ctx: Context) -> int:
    """The guide's steps 2-3 on one instance, every line streamed; a re-run skips what is done."""
    import asyncio

    from tui.cli.runner import ask, instance, with_engine
    from tui.core.guide import SetupSpec, dry_run

    if args.dry_run:  # the profile's commands, printed: no cloud, no instance, no engine
        ctx.out.write(asyncio.run(dry_run(SetupSpec.from_settings(ctx.settings))))
        return EXIT_OK

    async def approve(device: str, size: str) -> bool:
        if args.format_empty_volume:
            return True
        if not sys.stdin.isatty():
            say(f"Volume {device} ({size}) is empty and not formatted: re-run with --format-empty-volume to "
                "format (ext4) and mount it.")
            return False
        return yes(await ask(f"Volume {device} ({size}) is empty. Format it (ext4) and mount it? [y/N] "))

    async def body(engine: Engine, out: Printer) -> int:
        inst, login = await instance(engine, out, args.name)
        pin = "pinned from the console log" if login.pinned else "trust on first use"
        ctx.print(f"Setting up {inst.name} ({login.describe}, host key {pin})")
        result = await engine.run_setup(inst, approve_format=approve)
        if result.ok:
            ctx.print(result.summary)
            return EXIT_OK
        if not out.bad_fingerprint:  # the cause on stderr, where a script reads errors ("Setup failed at step …")
            err(f"{result.summary.rstrip('.')} — fix that and run `{command('setup', inst.name)}` again "
                "(finished steps are skipped)")
        return EXIT_FAIL

    def interrupted(out: Printer) -> str:
        where = f" in step {out.step!r}" if out.step else ""
        return (f"Setup of {args.name} interrupted{where}; finished steps are kept: run "
                f"`{command('setup', args.name)}` again to go on")

    return with_engine(args, ctx, body, interrupted)


def cmd_ssh(args: argparse.Namespace, ctx: Context) -> int:
    """An interactive shell (or COMMAND) through OpenSSH, with the app's key and its verified known_hosts; without
    `ssh` on PATH, through the built-in client on the engine's verified connection (tui.core.remote.interactive)."""
    import shutil

    from tui.cli.runner import instance, with_engine

    remote = " ".join(getattr(args, REST)) or None
    if shutil.which("ssh") is None:
        from tui.core.remote.interactive import NOT_FOUND

        say(NOT_FOUND)

        async def builtin(engine: Engine, out: Printer) -> int:
            inst, _ = await instance(engine, out, args.name)
            return await engine.shell.session(inst, remote)  # host key settled before the session

        return with_engine(args, ctx, builtin, lambda out: f"The SSH session on {args.name} was interrupted")

    found: list[tuple[Engine, Instance, list[str]]] = []

    async def body(engine: Engine, out: Printer) -> int:
        inst, _ = await instance(engine, out, args.name)
        argv = await engine.shell.argv(inst, remote)  # settles the host key first: OpenSSH then checks it strictly
        found.append((engine, inst, argv))
        return EXIT_OK

    code = with_engine(args, ctx, body, lambda out: f"Connecting to {args.name} interrupted; nothing was run")
    if code != EXIT_OK or not found:
        return code
    return _openssh(*found[0], remote)  # after the engine closed its connection and signal handlers


def _openssh(engine: Engine, inst: Instance, argv: list[str], remote: str | None) -> int:
    """Run OpenSSH in the foreground; Ctrl+C belongs to it (and to the remote command), not to us."""
    import signal
    import subprocess
    import threading
    import time
    from datetime import UTC, datetime

    started, t0 = datetime.now(UTC), time.monotonic()
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda *_: None) if main else None  # not SIG_IGN: ssh gets the default
    try:
        code = subprocess.call(argv)
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    engine.shell.record(inst, remote or "(interactive shell)", code, time.monotonic() - t0, started)
    return code


@engine_command
def cmd_commands(args: argparse.Namespace, ctx: Context, engine: Engine) -> int:
    """Every command the app ran on an instance (time, exit code, duration; secrets masked), to read or export."""
    from pathlib import Path

    inst = engine.get_instance(args.name)
    text, path = engine.shell.history(inst)
    if args.output:
        from tui.core.cloud.base import InvalidInput

        try:
            Path(args.output).expanduser().write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"-o {args.output}: cannot write ({exc.strerror})",
                               "give a file in a folder that exists and that you may write to") from None
        ctx.print(f"Wrote {len(text.splitlines())} lines of {inst.name}'s command log to {args.output}")
        return EXIT_OK
    ctx.out.write(text or f"No commands run on {inst.name} yet (the log is {path}).\n")
    return EXIT_OK
