"""`status`: every instance with its Jupyter server, load and memory, and its tunnels (per purpose) from the state.

A URL is shown only where a local tunnel listens: Jupyter's own port is on the VM, and `http://127.0.0.1:8889/`
there is no address on this machine.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from tui.cli.common import EXIT_OK, Context, table
from tui.core.hints import command

if TYPE_CHECKING:
    from tui.cli.parser import Commands
    from tui.cli.printer import Printer
    from tui.core.api import Engine
    from tui.core.live import Fleet
    from tui.core.models import Instance
    from tui.core.state import AppState

MASK = "********"


def add_parsers(commands: Commands) -> None:
    st = commands.json(commands.add("status", "every instance with its Jupyter server, load, URL and tunnels",
                                    cmd_status))
    st.add_argument("--show-token", action="store_true", help="show Jupyter's token in URLs (masked otherwise)")


def masked(url: str) -> str:
    """`url` (without token) with a masked token parameter."""
    return f"{url}{'&' if '?' in url else '?'}token={MASK}" if url else ""


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def tunnel_rows(state: AppState, instance_id: str) -> list[dict[str, Any]]:
    """The instance's recorded tunnels; `bytes_in`/`bytes_out` so far from the process serving each (the app or a
    foreground `tunnel`/`open`), None when no live process serves it."""
    from tui.core.traffic import read_counts

    counts = read_counts(state.path.parent)
    rows = []
    for (iid, _), t in sorted(state.tunnels.items()):
        if iid == instance_id:
            listening = _listening(t.local_port)
            moved = counts.get((iid, t.purpose, t.local_port)) if listening else None
            rows.append({"purpose": t.purpose, "local_port": t.local_port, "remote_host": t.remote_host,
                         "remote_port": t.remote_port, "listening": listening,
                         "bytes_in": moved[0] if moved else None, "bytes_out": moved[1] if moved else None})
    return rows


def _row(iid: str, name: str, status: str, jupyter: str, remote_port: int | None, state: AppState,
         error: str = "") -> dict[str, Any]:
    from tui.core.live import InstanceLive

    return {"id": iid, "name": name, "status": status, "jupyter": jupyter, "url": "", "remote_port": remote_port,
            **InstanceLive(iid).signal_fields(), "tunnels": tunnel_rows(state, iid), "error": error}


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    """Every instance of the cloud and of the state file; Jupyter read over SSH where the app started a server, and
    every per-instance signal (`tui.core.events.SIGNALS`: load and memory…) wherever SSH answers with a pinned or
    known host key — folded into the live state as the app does, and printed from it."""
    from tui.cli.runner import with_engine
    from tui.core.events import Event, HostKeyQuestion
    from tui.core.live import Fleet

    fleet = Fleet()

    def listen(event: Event) -> None:
        if isinstance(event, HostKeyQuestion):  # status never asks: unknown host keys are refused (said per row)
            event.refuse()
        fleet.apply(event)

    rows: list[dict[str, Any]] = []

    async def body(engine: Engine, _out: Printer) -> int:
        rows.extend(await _rows(args, engine, fleet))
        return EXIT_OK

    code = with_engine(args, ctx, body, "Status interrupted", listen=listen)
    if code != EXIT_OK:
        return code
    if args.json:
        ctx.json(rows)
    elif not rows:
        ctx.print(f"No instances. Launch one with: {command('launch', 'NAME')}")
    else:
        ctx.print(table([_text_row(r) for r in rows],
                        ("NAME", "STATUS", "JUPYTER", "LOAD/MEM", "URL", "TUNNELS", "NOTE")))
    return EXIT_OK


async def _rows(args: argparse.Namespace, engine: Engine, fleet: Fleet) -> list[dict[str, Any]]:
    import asyncio

    state = engine.saved_state()
    instances = {i.id: i for i in await asyncio.to_thread(engine.list_instances)}
    rows: list[dict[str, Any]] = []
    active: list[tuple[dict[str, Any], Instance]] = []
    for inst in sorted(instances.values(), key=lambda i: i.name):
        rec = state.servers.get(inst.id)
        row = _row(inst.id, inst.name, inst.status, "-" if rec is None else "unknown",
                   rec.remote_port if rec else None, state)
        if inst.status == "ACTIVE":
            active.append((row, inst))
        elif rec is not None:
            row["jupyter"] = "stopped"
        rows.append(row)
    for iid in sorted({*state.servers, *(k[0] for k in state.tunnels)} - set(instances)):
        rec = state.servers.get(iid)
        rows.append(_row(iid, "?", "GONE", "unknown", rec.remote_port if rec else None, state,
                         "instance not found in the cloud"))
    await asyncio.gather(*(_jupyter(args, engine, row, inst) for row, inst in active if row["jupyter"] != "-"))
    await engine.fleet.refresh([inst for _, inst in active], new_logins=len(active))  # each signal, folded into `fleet`
    for row, inst in active:
        live = fleet.get(inst.id)
        if live is not None:
            row.update(live.signal_fields())
    return rows


async def _jupyter(args: argparse.Namespace, engine: Engine, row: dict[str, Any], inst: Instance) -> None:
    """The Jupyter server the app started here: running (on which port, its URL through a local tunnel) or not."""
    from tui.core.errors import CadesError
    from tui.core.state import JUPYTER

    try:
        port = await engine.jupyter.find(inst)
    except CadesError as exc:
        row["error"] = str(exc)
        return
    if port is None:
        row["jupyter"] = "stopped"
        return
    row.update(jupyter="running", remote_port=port)
    local = [t["local_port"] for t in row["tunnels"] if t["purpose"] == JUPYTER and t["listening"]]
    if local:
        url = engine.jupyter.url(inst.id, local[0], with_token=args.show_token)
        row["url"] = url if args.show_token else masked(url)
    else:
        row["error"] = row["error"] or f"no tunnel: `{command('open', inst.name)}`"


def _text_row(r: dict[str, Any]) -> tuple[str, ...]:
    load = "-" if r["load1"] is None else f"{r['load1']:.2f} / {r['mem_used_pct']:.0f}%"
    jupyter = r["jupyter"] + (f" (VM port {r['remote_port']})" if r["jupyter"] == "running" else "")
    tunnels = ", ".join(f"{t['purpose']} {t['local_port']} ({'listening' if t['listening'] else 'closed'}"
                        + (f", {_traffic(t)})" if t["bytes_in"] is not None else ")") for t in r["tunnels"]) or "-"
    return (r["name"], r["status"], jupyter, load, r["url"] or "-", tunnels, r["error"])


def _traffic(t: dict[str, Any]) -> str:
    import humanize

    return f"↓{humanize.naturalsize(t['bytes_in'], gnu=True)} ↑{humanize.naturalsize(t['bytes_out'], gnu=True)}"
