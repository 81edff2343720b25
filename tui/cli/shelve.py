"""`cades-tui shelve NAME [--yes]`, `unshelve NAME [--wait]`, `cost [--json]`: pay only for what computes.

Each drives the engine as the app does (`engine.shelving`, `engine.cost`) and prints its progress on stderr
and its result on stdout; a refusal is one line (exit 1), a bad profile or a missing cost model one line (exit 2).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from tui.cli.common import EXIT_OK, Context, say
from tui.cli.parser import name_arg
from tui.core.hints import command

if TYPE_CHECKING:
    from tui.cli.parser import Commands
    from tui.core.api import Engine
    from tui.core.cost import CostReport
    from tui.core.models import Instance


def add_parsers(commands: Commands) -> None:
    sh = commands.add("shelve", "shelve an instance: nothing runs, its disk is kept, its cores and RAM are freed "
                                "(Jupyter and a cluster's sessions end; unshelve brings them back)", cmd_shelve)
    sh.add_argument("name", type=name_arg)
    sh.add_argument("--yes", action="store_true", help="do not ask (scripts)")
    sh.add_argument("--accept-host-key", metavar="SHA256:...", default="",
                    help="trust this host key fingerprint when the console log does not pin it (scripts)")
    un = commands.add("unshelve", "bring a shelved instance back, then Jupyter (if it ran) and its cluster's "
                                  "sessions", cmd_unshelve)
    un.add_argument("name", type=name_arg)
    un.add_argument("--wait", action="store_true", help="wait until ACTIVE with Jupyter back (always done; "
                    "accepted for scripts)")
    un.add_argument("--accept-host-key", metavar="SHA256:...", default="",
                    help="trust this host key fingerprint when the console log does not pin it (scripts)")
    co = commands.add("cost", "the burn rate per hour by the profile's cost model, each instance's share, and "
                              "what stopping or shelving each would save", cmd_cost)
    commands.json(co)


def _with_engine(args: argparse.Namespace, ctx: Context, body: Callable[[Engine], Awaitable[int]],
                 interrupted: str) -> int:
    from tui.cli.runner import with_engine

    async def run(engine: Engine, _printer: object) -> int:
        return await body(engine)

    return with_engine(args, ctx, run, interrupted)


async def _instance(engine: Engine, name: str) -> Instance:
    return await asyncio.to_thread(engine.get_instance, name)


def cmd_shelve(args: argparse.Namespace, ctx: Context) -> int:
    import sys

    from tui.cli.common import confirm_typed
    from tui.core.cloud.base import InvalidInput

    if not args.yes and not sys.stdin.isatty():  # before the engine: its refusal would read as the cloud's (exit 1)
        raise InvalidInput("refusing to shelve without a terminal to confirm on", "pass --yes in scripts")

    async def body(engine: Engine) -> int:
        inst = await _instance(engine, args.name)

        async def typed(text: str) -> bool:
            return await asyncio.to_thread(confirm_typed, text, inst.name)

        done = await engine.shelving.shelve(inst, None if args.yes else typed, say)
        ctx.print(f"{done.name} is {done.status}: nothing runs, its disk is kept. Bring it back with: "
                  f"{command('unshelve', done.name)}")
        return EXIT_OK

    return _with_engine(args, ctx, body, "Shelving interrupted: the cloud may still finish it; see "
                                         f"`{command('show', args.name)}`")


def cmd_unshelve(args: argparse.Namespace, ctx: Context) -> int:
    async def body(engine: Engine) -> int:
        inst = await _instance(engine, args.name)
        done = await engine.shelving.unshelve(inst, say)
        ctx.print(f"{done.instance.name} is {done.instance.status} at {done.instance.ip or 'no address'}.")
        if done.jupyter_port:
            ctx.print(f"Jupyter runs again; reach it with: {command('jupyter', 'tunnel', done.instance.name)} "
                      f"(its tunnel was on 127.0.0.1:{done.jupyter_port})")
        elif done.jupyter_error:
            ctx.print(f"Jupyter ran before but did not start again: {done.jupyter_error}")
        if done.clusters:
            ctx.print(f"Dask cluster sessions restarted on {', '.join(done.clusters)}.")
        return EXIT_OK

    return _with_engine(args, ctx, body, "Unshelving interrupted: the cloud may still finish it; see "
                                         f"`{command('show', args.name)}`")


def cmd_cost(args: argparse.Namespace, ctx: Context) -> int:
    from tui.core.cloud.base import InvalidInput

    if ctx.settings.cost_model is None:
        raise InvalidInput(f"no cost model for cloud '{ctx.settings.cloud}' (profile: {ctx.settings.source})",
                           f"add `cost: {{{ctx.settings.cloud}: {{unit: SU, per_vcpu_hour: 1.0, state_factors: "
                           "{...}}}` to the profile (config/cades-tui.example.yaml has Jetstream2's)")

    async def body(engine: Engine) -> int:
        polled = await asyncio.to_thread(engine.poll, False, True)
        report = engine.cost(polled.instances)
        assert report is not None
        if args.json:
            ctx.json(report)
        else:
            print_cost(ctx, report)
        return EXIT_OK

    return _with_engine(args, ctx, body, "interrupted")


def print_cost(ctx: Context, report: CostReport) -> None:
    from tui.cli.common import table
    from tui.core.cost import amount, per_hour

    unit = report.unit
    ctx.print(f"Burn rate now: {per_hour(report.burn_rate, unit)} ({amount(report.burn_rate * 24, unit)} a day)")
    if not report.instances:
        return
    rows = [(i.name, i.status, f"{i.flavor} ({i.vcpus} vCPU)", per_hour(i.rate, unit), f"{i.share:.0%}",
             per_hour(i.stop_saves, unit) if i.stop_saves else "-",
             per_hour(i.shelve_saves, unit) if i.shelve_saves else "-", i.best or "-")
            for i in report.instances]
    ctx.print(table(rows, ("NAME", "STATUS", "FLAVOR", "NOW", "SHARE", "STOP SAVES", "SHELVE SAVES", "BEST")))
    if report.could_save > 0:
        ctx.print(f"Doing the best action on each would save {per_hour(report.could_save, unit)}.")
