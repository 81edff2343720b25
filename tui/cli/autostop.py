"""`cades-tui autostop NAME`: the watchdog on the VM that stops (or shelves) it when idle, with the laptop closed.

`--idle 60m [--action stop|shelve]` arms or changes it, `--keep` resets its timer, `--off` removes it, and alone
(or `--status [--json]`) it says what the watchdog sees. The work is the engine's (`engine.autostop`); this prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import TYPE_CHECKING

from tui.cli.common import EXIT_OK, Context

if TYPE_CHECKING:
    from tui.cli.parser import Commands
    from tui.core.api import Engine
    from tui.core.autostop.status import AutostopStatus


def add_parsers(commands: Commands) -> None:
    p = commands.instance(commands.add(
        "autostop", "stop (or shelve) the instance when it has been idle this long — a watchdog on the VM, so it "
                    "works with this laptop closed", cmd_autostop))
    what = p.add_mutually_exclusive_group()
    what.add_argument("--idle", metavar="DURATION", default=None,
                      help="arm it (or change it): idle this long, e.g. 60m, 2h (default: the profile's "
                           "autostop.idle)")
    what.add_argument("--off", action="store_true", help="remove it (the VM keeps running)")
    what.add_argument("--keep", action="store_true", help="reset its timer: the VM is in use")
    what.add_argument("--status", action="store_true", help="what the watchdog sees (the default)")
    p.add_argument("--action", choices=("stop", "shelve"), default=None,
                   help="stop: powered off from inside (no credential on the VM); shelve: with an application "
                        "credential for this VM only (default: the profile's autostop.action)")
    commands.json(p)


def cmd_autostop(args: argparse.Namespace, ctx: Context) -> int:
    from tui.cli.runner import with_engine

    async def body(engine: Engine, _printer: object) -> int:
        policy = None
        if not (args.off or args.keep) and (args.idle is not None or args.action is not None):
            policy = engine.autostop.policy(args.idle, args.action)
            if policy is None:
                from tui.core.cloud.base import InvalidInput

                raise InvalidInput("autostop: no idle period — the profile's autostop.idle is off",
                                   "give one, e.g. --idle 60m")
        inst = await asyncio.to_thread(engine.get_instance, args.name)
        if policy is not None:
            status = await engine.autostop.set(inst, policy)
            ctx.print(f"Autostop on {inst.name}: {policy.describe()}.")
        elif args.off:
            status = await engine.autostop.off(inst)
        elif args.keep:
            status = await engine.autostop.keep(inst)
            ctx.print(f"Kept {inst.name}: the idle timer starts again.")
        else:
            status = await engine.autostop.status(inst)
        _show(ctx, args, inst.name, status)
        return EXIT_OK

    return with_engine(args, ctx, body, "Autostop interrupted")


def _show(ctx: Context, args: argparse.Namespace, name: str, status: AutostopStatus) -> None:
    if args.json:
        from tui.core.autostop.service import status_json

        ctx.json(status_json(name, status))
        return
    ctx.print(f"{name}: {status.line(time.time())}")
    if status.warning:
        ctx.print(f"warning: {status.warning}")
