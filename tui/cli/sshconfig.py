"""`cades-tui ssh-config [--install|--uninstall] [--print] [--json]`: the instances by name for ssh, scp, rsync and
VS Code — a generated OpenSSH config with the app's key and pinned host keys (`tui.core.sshconfig`).

Once written it follows the instances: the core rewrites it after each change (`CoreEngine.sshconfig.follow`);
`follow` below runs it after the commands that change instances without the engine's own methods yet.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from typing import TYPE_CHECKING, Any

from tui.cli.common import EXIT_OK, Context, say
from tui.core.hints import command

if TYPE_CHECKING:
    from tui.cli.parser import Commands
    from tui.core.api import Engine
    from tui.core.sshconfig import Report
    from tui.core.sshinclude import IncludeChange

# Commands after which the generated file may be out of step (new, gone or moved instances).


def add_parsers(commands: Commands) -> None:
    p = commands.add("ssh-config", "write an OpenSSH config naming every instance (for ssh NAME, scp, rsync, VS "
                     "Code), with the app's key and pinned host keys; it then follows the instances", cmd_ssh_config)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--install", action="store_true",
                   help="also add its Include line as the first line of ~/.ssh/config (once; a backup is kept)")
    g.add_argument("--uninstall", action="store_true",
                   help="take the Include line out of ~/.ssh/config and remove the generated file")
    g.add_argument("--print", action="store_true", help="print the config it would write; write nothing")
    commands.json(p)


def cmd_ssh_config(args: argparse.Namespace, ctx: Context) -> int:
    if args.uninstall:  # local files only: no cloud needed
        return _uninstall(args, ctx)
    from tui.cli.runner import with_engine

    async def body(engine: Engine, _printer: object) -> int:
        if args.install:
            change = await asyncio.to_thread(engine.sshconfig.install)
            report = await asyncio.to_thread(engine.sshconfig.write)
        else:
            change = None
            report = await asyncio.to_thread(engine.sshconfig.write, not args.print)
        if report.plan.unverified and not args.print:  # host keys the console log pins: recorded by one login
            verified = await engine.sshconfig.verify(report.plan.unverified)
            if verified:
                again = await asyncio.to_thread(engine.sshconfig.write)
                report = dataclasses.replace(again, changed=report.changed or again.changed)
        if args.json:
            ctx.json(_json(report, change))
        elif args.print:
            ctx.out.write(report.text)
        else:
            _say(ctx, report, change)
        return EXIT_OK

    return with_engine(args, ctx, body, "ssh-config interrupted")


def _uninstall(args: argparse.Namespace, ctx: Context) -> int:
    from tui.core import sshinclude
    from tui.core.sshconfig import config_path

    change = sshinclude.uninstall()
    path = config_path(ctx.settings.cloud)
    existed = path.is_file()
    path.unlink(missing_ok=True)
    if args.json:
        ctx.json({"config": str(change.config), "include": change.line, "removed_include": change.changed,
                  "backup": str(change.backup) if change.backup else None, "removed": str(path) if existed else None})
        return EXIT_OK
    if change.changed:
        ctx.print(f"Took `{change.line}` out of {change.config} (the file as it was: {change.backup}).")
    else:
        ctx.print(f"{change.config} has no `{change.line}` line; nothing changed there.")
    if existed:
        ctx.print(f"Removed {path}: it no longer follows the instances.")
    return EXIT_OK


def _say(ctx: Context, report: Report, change: IncludeChange | None) -> None:
    plan = report.plan
    names = ", ".join(h.name for h in plan.hosts) or "none"
    state = "Wrote" if report.changed else "Up to date:"
    ctx.print(f"{state} {report.path} — {len(plan.hosts)} host(s): {names}")
    for s in plan.skipped:
        say(f"skipped: {s.why}")
    if plan.unverified:
        first = plan.unverified[0]
        say(f"host key not verified yet: {', '.join(plan.unverified)} — OpenSSH will refuse them until the app has "
            f"logged in once (`{command('ssh', first, '--', 'true')}`: pinned from the console log, or shown to "
            "accept)")
    if change is not None:
        if change.changed:
            backup = f" (the file as it was: {change.backup})" if change.backup else ""
            ctx.print(f"Added `{change.line}` as the first line of {change.config}{backup}.")
        else:
            ctx.print(f"{change.config} already starts with `{change.line}`; nothing changed there.")
    if report.installed:
        first = plan.hosts[0].name if plan.hosts else "NAME"
        ctx.print(f"Now: ssh {first}, scp FILE {first}:, rsync -e ssh DIR {first}:, "
                  f"code --remote ssh-remote+{first} DIR")
    else:
        ctx.print(f"Use it with `ssh -F {report.path} NAME`, or by name everywhere after "
                  f"`{command('ssh-config', '--install')}` (adds `{report.include}` as the first line of "
                  "~/.ssh/config).")
    if report.wsl_note:
        say(report.wsl_note)


def _json(report: Report, change: IncludeChange | None) -> dict[str, Any]:
    return {
        "path": str(report.path), "changed": report.changed, "include": report.include,
        "installed": report.installed, "hosts": [h.name for h in report.plan.hosts],
        "skipped": [{"name": s.name, "why": s.why} for s in report.plan.skipped],
        "unverified": list(report.plan.unverified), "wsl_note": report.wsl_note,
        "include_added": change.changed if change is not None else False,
        "backup": str(change.backup) if change is not None and change.backup else None,
    }
