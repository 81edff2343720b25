"""Jupyter on an instance: `jupyter start|stop|logs`, and `tunnel` / `open`, which serve in the foreground.

A tunnel made here lives as long as the command runs and follows Jupyter as the app's does (the core's one follow
logic, tui.core.jupyter.follow: restarted on another port, stopped and started again, a VM restart); Ctrl+C (or
SIGTERM, SIGHUP) closes it — its `ssh` master included — and Jupyter keeps running on the VM.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from tui.cli.common import EXIT_FAIL, EXIT_OK, Context, err, say, yes
from tui.core.hints import command

if TYPE_CHECKING:
    from tui.cli.parser import Commands
    from tui.cli.printer import Printer
    from tui.core.api import Engine

FOREGROUND_NOTE = "The tunnel serves while this command runs; Ctrl+C closes it (Jupyter keeps running on the VM)."


def add_parsers(commands: Commands) -> None:
    ju = commands.group("jupyter", "start, stop or read the log of the Jupyter server on an instance",
                        "jupyter_command")
    js = commands.instance(ju.add("start", "start Jupyter in a detached screen session and check it answers",
                                  cmd_start))
    js.add_argument("--local-port", type=int, default=None, metavar="P", help="local port for the check's tunnel")
    jx = commands.instance(ju.add("stop", "stop Jupyter (refuses while kernels are busy unless --force)", cmd_stop))
    jx.add_argument("--force", action="store_true", help="stop even when kernels are busy")
    jl = commands.instance(ju.add("logs", "print the Jupyter server log (tokens hidden)", cmd_logs))
    jl.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl+C")
    jl.add_argument("-n", "--lines", type=int, default=200, help="how many past lines (default 200)")

    tu = commands.instance(commands.add(
        "tunnel", "forward 127.0.0.1:PORT to the instance's Jupyter, in the foreground", cmd_tunnel))
    tu.add_argument("--local-port", type=int, default=None, metavar="P",
                    help="exactly this local port (default: the profile's when free, else any free one)")
    op = commands.instance(commands.add(
        "open", "open Jupyter in the browser through a tunnel (stays in the foreground)", cmd_open))
    op.add_argument("--local-port", type=int, default=None, metavar="P")
    op.add_argument("--no-browser", action="store_true", help="only print (and copy) the URL")


def osc52(text: str) -> str:
    """The escape sequence that asks the terminal to copy `text` to the clipboard."""
    import base64

    return f"\x1b]52;c;{base64.b64encode(text.encode()).decode()}\x07"


def cmd_start(args: argparse.Namespace, ctx: Context) -> int:
    from tui.cli.runner import instance, with_engine

    _check_port(args.local_port)

    async def body(engine: Engine, out: Printer) -> int:
        import time

        inst, _ = await instance(engine, out, args.name)
        t0 = time.monotonic()
        state = await engine.jupyter.start(inst, args.local_port)
        ctx.print(f"Answered through the tunnel after {time.monotonic() - t0:.1f} s "
                  f"(server port {state.remote_port} on the VM).")
        await engine.close_tunnel(inst.id)
        name = inst.name
        ctx.print(f"Jupyter keeps running on {name}. Open it with: {command('open', name)}  "
                  f"(or forward a port with: {command('tunnel', name)})")
        return EXIT_OK

    return with_engine(args, ctx, body, lambda out: (
        f"Starting Jupyter on {args.name} interrupted; it may still be starting there: see `{command('status')}`"))


def cmd_stop(args: argparse.Namespace, ctx: Context) -> int:
    from tui.cli.runner import ask, instance, with_engine

    async def body(engine: Engine, out: Printer) -> int:
        inst, _ = await instance(engine, out, args.name)
        outcome = await engine.jupyter.stop(inst, force=args.force)
        if not outcome.stopped:
            ctx.print(f"Could not tell whether kernels are busy on {inst.name} ({outcome.unknown}): some "
                      "may be running code." if outcome.unknown else
                      f"{len(outcome.busy)} kernel(s) busy on {inst.name}:")
            for k in outcome.busy:
                ctx.print(f"  {k.name} {k.id[:8]} {k.path or '(no notebook)'}: {k.execution_state}")
            if not sys.stdin.isatty():
                err(f"not stopped: {outcome.asks} (their work would be lost); pass --force to stop anyway")
                return EXIT_FAIL
            if not yes(await ask("Stop Jupyter anyway? Running work is lost. [y/N] ")):
                ctx.print("Not stopped.")
                return EXIT_FAIL
            await engine.jupyter.stop(inst, force=True)
        ctx.print(f"Jupyter on {inst.name} is stopped (process and session verified gone).")
        return EXIT_OK

    return with_engine(args, ctx, body, lambda out: (
        f"Stopping Jupyter on {args.name} interrupted: see `{command('status')}` for whether it still runs"))


def cmd_logs(args: argparse.Namespace, ctx: Context) -> int:
    from tui.cli.runner import instance, with_engine
    from tui.core.cloud.base import InvalidInput

    if args.lines < 0:
        raise InvalidInput(f"--lines {args.lines}: expected a number of lines, 0 or more", "e.g. -n 100")

    async def body(engine: Engine, out: Printer) -> int:
        inst, _ = await instance(engine, out, args.name)
        if not args.follow:
            for line in await engine.jupyter.log(inst, args.lines):
                ctx.print(line)
            return EXIT_OK
        await engine.jupyter.follow_log(inst)
        await out.background_failed.wait()  # until a signal — or the follower ended (said on stderr)
        return EXIT_FAIL

    return with_engine(args, ctx, body, lambda out: f"Stopped following the Jupyter log of {args.name}",
                        log_history=args.lines)


def _check_port(port: int | None) -> None:
    from tui.core.cloud.base import InvalidInput

    if port is not None and not 1 <= port <= 65535:
        raise InvalidInput(f"--local-port {port}: expected a TCP port 1-65535", "or omit it to pick a free one")


def _closed(args: argparse.Namespace) -> str:
    return f"Tunnel to {args.name} closed; Jupyter keeps running on the VM"


def cmd_tunnel(args: argparse.Namespace, ctx: Context) -> int:
    from tui.cli.runner import forever, instance, with_engine

    _check_port(args.local_port)

    async def body(engine: Engine, out: Printer) -> int:
        inst, _ = await instance(engine, out, args.name)
        state = await engine.open_tunnel(inst, args.local_port, strict=args.local_port is not None)
        ctx.print(f"Forwarding {state.public_url} -> {inst.name}:{state.remote_port} "
                  f"(`{command('open', inst.name)}` gives the URL with its token).")
        ctx.print(FOREGROUND_NOTE)
        ctx.out.flush()
        return await forever()

    return with_engine(args, ctx, body, lambda out: _closed(args))


def cmd_open(args: argparse.Namespace, ctx: Context) -> int:
    from tui.cli.runner import forever, instance, with_engine

    _check_port(args.local_port)

    async def body(engine: Engine, out: Printer) -> int:
        import asyncio
        import webbrowser

        inst, _ = await instance(engine, out, args.name)
        await engine.open_tunnel(inst, args.local_port, strict=args.local_port is not None)
        url = await engine.jupyter.token_url(inst)
        assert url is not None  # the tunnel was just verified
        ctx.print(f"Jupyter on {inst.name}: {url}")
        if ctx.out.isatty():
            ctx.out.write(osc52(url))
            ctx.print("(URL copied to the clipboard)")
        if not args.no_browser and not await asyncio.to_thread(webbrowser.open, url):
            say("No browser found here: open the URL above in yours.")
        ctx.print(FOREGROUND_NOTE)
        ctx.out.flush()
        return await forever()

    return with_engine(args, ctx, body, lambda out: _closed(args))
