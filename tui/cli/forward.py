"""`cades-tui forward`: any port of an instance forwarded to 127.0.0.1 — in the foreground, or saved and kept.

    forward NAME REMOTE_PORT [--local-port P] [--label L]   serve it until Ctrl+C
    forward NAME REMOTE_PORT --save [...]                    keep it: the app and every reattach open it
    forward NAME                                             serve NAME's saved forwards until Ctrl+C
    forward list [--json]                                    saved and open forwards, with byte counts
    forward close NAME [LABEL|PORT]                          close and forget a saved forward
    forward suggest NAME [--json]                            the ports the VM listens on (sshd left out)

Each drives the engine (`tui.core.forwards` behind the engine's `engine.forwards`) and prints its events.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

from tui.cli.common import EXIT_FAIL, EXIT_OK, Context, err, say
from tui.cli.parser import host_key_fingerprint
from tui.core.hints import command

if TYPE_CHECKING:
    from tui.cli.parser import Commands
    from tui.core.api import Engine
    from tui.core.forwards import Forward
    from tui.core.models import Instance

ACTIONS = ("list", "close", "suggest")
USAGE = ("NAME REMOTE_PORT [--local-port P] [--label L] [--save] | NAME | list [--json] | close NAME [LABEL|PORT] | "
         "suggest NAME [--json]")


def add_parsers(commands: Commands) -> None:
    p = commands.add("forward", "forward any port of an instance to 127.0.0.1 (in the foreground, or --save to keep "
                                "it: the app and every reattach open it); list, close, suggest", cmd_forward)
    p.usage = f"cades-tui forward {USAGE}"
    p.add_argument("words", nargs="+", metavar="ARGS", help=USAGE)
    p.add_argument("--local-port", type=int, default=None, metavar="P",
                   help="local port (default: the remote port's number; another free one when it is taken)")
    p.add_argument("--label", default="", metavar="L", help="a name for the forward (default: port-REMOTE_PORT)")
    p.add_argument("--save", action="store_true", help="keep the forward (opened by the app and on reattach)")
    p.add_argument("--json", action="store_true", help="print JSON (list, suggest)")
    p.add_argument("--accept-host-key", metavar="SHA256:...", default=None, type=host_key_fingerprint,
                   help="trust this host key fingerprint when the console log does not pin it (scripts)")


def _bad(message: str, fix: str) -> Exception:
    from tui.core.cloud.base import InvalidInput

    return InvalidInput(message, fix)


def _port(text: str, what: str) -> int:
    from tui.core.forwards import port_problem

    try:
        port = int(text)
    except ValueError:
        raise _bad(f"{what} {text!r}: expected a TCP port 1-65535",
                   f"e.g. `{command('forward', 'NAME', '8888')}`") from None
    problem = port_problem(port, what)
    if problem:
        raise _bad(problem, f"e.g. `{command('forward', 'NAME', '8888')}`")
    return port


def cmd_forward(args: argparse.Namespace, ctx: Context) -> int:
    from tui.core.forwards import label_problem, port_problem

    words = list(args.words)
    action = words[0] if words[0] in ACTIONS else ""
    rest = words[1:] if action else words
    if args.local_port is not None and (problem := port_problem(args.local_port, "--local-port")):
        raise _bad(problem, "or leave it out: the remote port's number, else any free one")
    if args.label and (problem := label_problem(args.label)):
        raise _bad(f"--label: {problem}", "use letters, digits, '.', '_' and '-'")
    if action == "list":
        if rest:
            raise _bad(f"forward list takes no NAME ({' '.join(rest)})", f"`{command('forward', 'list')}`")
        return _with_engine(args, ctx, "", lambda e: _list(ctx, e, args.json))
    if not rest or len(rest) > 2 or (action == "suggest" and len(rest) != 1):
        raise _bad(f"forward {' '.join(words)}: expected {USAGE}", f"see `{command('forward', '--help')}`")
    name = rest[0]
    if not name.strip():
        raise _bad("NAME is empty", "give an instance name or id")
    if action == "suggest":
        return _with_engine(args, ctx, name, lambda e: _suggest(ctx, e, name, args.json))
    if action == "close":
        return _with_engine(args, ctx, name, lambda e: _close(ctx, e, name, rest[1] if len(rest) > 1 else ""))
    if len(rest) == 1:
        if args.save:
            raise _bad("--save needs REMOTE_PORT", f"e.g. `{command('forward', name, '8888', '--save')}`")
        return _with_engine(args, ctx, name, lambda e: _serve_saved(ctx, e, name))
    port = _port(rest[1], "REMOTE_PORT")
    if args.save:
        return _with_engine(args, ctx, name, lambda e: _save(ctx, e, name, port, args))
    return _with_engine(args, ctx, name, lambda e: _foreground(ctx, e, name, port, args))


def _with_engine(args: argparse.Namespace, ctx: Context, name: str, body: Any) -> int:
    from tui.cli.runner import with_engine

    async def run(engine: Engine, _printer: object) -> int:
        code: int = await body(engine)
        return code

    args.name = name
    what = f"Forwards of {name} closed" if name else "Stopped"
    return with_engine(args, ctx, run, f"{what}; what they reach keeps running on the VM")


async def _instance(engine: Engine, name: str) -> Instance:
    return await asyncio.to_thread(engine.get_instance, name)


# -- serving in the foreground ---------------------------------------------------------------------------------

async def _foreground(ctx: Context, engine: Engine, name: str, port: int, args: argparse.Namespace) -> int:
    inst = await _instance(engine, name)
    fwd = await engine.forwards.open(inst, port, local_port=args.local_port, label=args.label)
    try:
        _opened(ctx, fwd)
        ctx.print("The forward serves while this command runs; Ctrl+C closes it (what it reaches keeps running).")
        ctx.out.flush()
        return await _live(engine, [fwd])
    finally:
        if not fwd.saved:  # nothing of it is kept (a saved one keeps its record as it was)
            await engine.forwards.close(inst.id, fwd.label, remove=False)


async def _serve_saved(ctx: Context, engine: Engine, name: str) -> int:
    inst = await _instance(engine, name)
    opened = await engine.forwards.reopen([inst])
    if not opened:
        saved = [f for f in engine.forwards.all() if f.instance == inst.id and f.saved]
        err(f"no saved forward of {inst.name} could be opened" if any(f.enabled for f in saved) else
            f"{inst.name} has no saved forward to open"
            + ("" if saved else f" (save one with `{command('forward', inst.name, 'REMOTE_PORT', '--save')}`)"))
        return EXIT_FAIL
    for fwd in opened:
        _opened(ctx, fwd)
    ctx.print("The saved forwards serve while this command runs; Ctrl+C closes them (they stay saved).")
    ctx.out.flush()
    return await _live(engine, opened)


def _opened(ctx: Context, fwd: Forward) -> None:
    ctx.print(f"Forwarding {fwd.url} -> {fwd.name}:{fwd.remote_port} ({fwd.label})")
    if fwd.port_taken:
        say(f"Note: {fwd.taken_note()}.")


async def _live(engine: Engine, opened: list[Forward]) -> int:
    """Until a signal: the state changes are printed by the printer (TunnelChanged); on a terminal, the bytes
    carried are shown on one line of stderr, updated while they move."""
    shown = ""
    keys = {(f.instance, f.label) for f in opened}
    while True:
        await asyncio.sleep(1.0)
        if not sys.stderr.isatty():
            continue
        now = [f for f in engine.forwards.all() if (f.instance, f.label) in keys]
        line = "  ".join(f"{f.label} {f.state} ↓{_size(f.bytes_in or 0)} ↑{_size(f.bytes_out or 0)}"
                         for f in now)
        if line != shown:
            shown = line
            sys.stderr.write(f"\r\x1b[K{line}")
            sys.stderr.flush()


# -- saved forwards --------------------------------------------------------------------------------------------

async def _save(ctx: Context, engine: Engine, name: str, port: int, args: argparse.Namespace) -> int:
    inst = await _instance(engine, name)
    fwd = engine.forwards.save(inst, port, local_port=args.local_port, label=args.label)
    where = f"127.0.0.1:{fwd.local_port}" if fwd.local_port else f"127.0.0.1:{port} (or a free port when taken)"
    forget = command("forward", "close", inst.name, fwd.label)
    ctx.print(f"Saved forward {fwd.label}: {where} -> {inst.name}:{port}. The app opens it (and every reattach); "
              f"now: `{command('forward', inst.name)}`; forget it: `{forget}`")
    return EXIT_OK


async def _close(ctx: Context, engine: Engine, name: str, which: str) -> int:
    mine = [f for f in engine.forwards.all() if name in (f.name, f.instance)]
    if not mine:
        inst = await _instance(engine, name)  # an unknown instance: exit 1 with the cloud's line
        mine = [f for f in engine.forwards.all() if f.instance == inst.id]
    if not mine:
        err(f"{name} has no forward (see `{command('forward', 'list')}`)")
        return EXIT_FAIL
    chosen = [f for f in mine if which in (f.label, str(f.remote_port))] if which else mine
    if not chosen:
        err(f"{name} has no forward {which!r}: it has {', '.join(f'{f.label} (port {f.remote_port})' for f in mine)}")
        return EXIT_FAIL
    if len(chosen) > 1:
        raise _bad(f"{name} has {len(chosen)} forwards ({', '.join(f.label for f in chosen)})",
                   f"name one: `{command('forward', 'close', name, chosen[0].label)}`")
    fwd = chosen[0]
    await engine.forwards.close(fwd.instance, fwd.label, remove=True)
    note = (" A running app closes it within seconds; a `forward` command serving it, when it ends."
            if fwd.state == "open elsewhere" else "")
    ctx.print(f"Forward {fwd.label} of {fwd.name} ({fwd.remote_host}:{fwd.remote_port}) closed"
              + (" and forgotten." if fwd.saved else ".") + note)
    return EXIT_OK


async def _list(ctx: Context, engine: Engine, as_json: bool) -> int:
    from tui.cli.common import table

    forwards = await _named(engine, engine.forwards.all())
    if as_json:
        ctx.json([{"instance": f.name, "instance_id": f.instance, "label": f.label, "remote_host": f.remote_host,
                   "remote_port": f.remote_port, "local_port": f.local_port or None, "url": f.url or None,
                   "saved": f.saved, "enabled": f.enabled, "state": f.state, "bytes_in": f.bytes_in,
                   "bytes_out": f.bytes_out} for f in forwards])
        return EXIT_OK
    if not forwards:
        ctx.print(f"No forwards. Forward a port: `{command('forward', 'NAME', 'REMOTE_PORT')}` (`--save` keeps it).")
        return EXIT_OK
    rows = [(f.name, f.label, f"{f.local_port or '-'} -> {f.remote_host}:{f.remote_port}",
             ("saved" if f.enabled else "saved, off") if f.saved else "-", f.state,
             "-" if f.bytes_in is None else f"↓{_size(f.bytes_in)} ↑{_size(f.bytes_out or 0)}")
            for f in forwards]
    ctx.print(table(rows, ("INSTANCE", "LABEL", "LOCAL -> VM", "KEPT", "STATE", "IN / OUT")))
    return EXIT_OK


async def _named(engine: Engine, forwards: list[Forward]) -> list[Forward]:
    """Forwards with their instance's name where only its id is known (one served unsaved by another command)."""
    from dataclasses import replace

    names: dict[str, str] = {}
    for iid in {f.instance for f in forwards if f.name == f.instance}:
        try:
            names[iid] = (await _instance(engine, iid)).name
        except Exception:  # gone, or the cloud is away: the id will do
            names[iid] = iid
    return [replace(f, name=names[f.instance]) if f.instance in names else f for f in forwards]


async def _suggest(ctx: Context, engine: Engine, name: str, as_json: bool) -> int:
    from tui.cli.common import table

    inst = await _instance(engine, name)
    found = await engine.forwards.suggestions(inst)
    if as_json:
        ctx.json([{"port": x.port, "address": x.address, "process": x.process or None} for x in found])
        return EXIT_OK
    if not found:
        ctx.print(f"Nothing listens on {inst.name} but sshd.")
        return EXIT_OK
    ctx.print(table([(str(x.port), x.address, x.process or "?") for x in found], ("PORT", "ADDRESS", "PROCESS")))
    ctx.print(f"Forward one: `{command('forward', inst.name, str(found[0].port))}`")
    return EXIT_OK


def _size(n: int) -> str:
    import humanize

    return str(humanize.naturalsize(n, gnu=True))
