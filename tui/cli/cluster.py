"""`cades-tui cluster create|scale|status|dashboard|delete HEAD`: a Dask cluster headed by the Jupyter instance.

Each command drives the same engine as the app (`tui.cli.runner.with_engine`) and prints its events: progress
lines per instance, then the result. The cluster outlives the command (like Jupyter); `dashboard` serves its tunnel
in the foreground until Ctrl+C.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tui.cli.common import EXIT_FAIL, EXIT_OK, Context, err, say, yes
from tui.cli.runner import with_engine
from tui.core.hints import command

if TYPE_CHECKING:
    from tui.cli.parser import Commands
    from tui.cli.printer import Printer
    from tui.core.api import Engine
    from tui.core.models import AbsentWorker, ClusterStatus, ClusterSummary


def add_parsers(commands: Commands) -> None:
    cl = commands.group("cluster", "a Dask cluster: the Jupyter instance (HEAD) plus worker instances",
                        "cluster_command")
    cr = _head(cl.add("create", "launch N workers (HEAD-w1…) and start the scheduler and workers; waits until "
                                "every worker is connected", cmd_create))
    cr.add_argument("--workers", type=int, default=None, metavar="N", help="worker instances (default: the "
                    "profile's cluster.workers)")
    cr.add_argument("--flavor", default="", help="workers' flavor (default: the smallest c1.* that fits)")
    cr.add_argument("--no-head-worker", action="store_true", help="the head runs the scheduler only")
    cr.add_argument("--wait", action="store_true", help="wait until every worker is connected (always done; "
                    "accepted for scripts)")
    _from_image(cr)
    sc = _head(cl.add("scale", "grow or shrink to N worker instances (down: retired gracefully, then deleted)",
                      cmd_scale))
    sc.add_argument("n", type=int, metavar="N", help="worker instances wanted (0 or more)")
    sc.add_argument("--flavor", default="", help="flavor of new workers (default: as for create)")
    sc.add_argument("--yes", action="store_true", help="delete retired workers without asking")
    _from_image(sc)
    commands.json(_head(cl.add("status", "scheduler, dashboard and a row per worker", cmd_status)))
    da = _head(cl.add("dashboard", "forward the Dask dashboard to 127.0.0.1 and open it (in the foreground)",
                      cmd_dashboard))
    da.add_argument("--no-browser", action="store_true", help="only print the URL")
    de = _head(cl.add("delete", "stop the cluster, delete its worker instances (with their volumes) and security "
                                "group; the head stays. When HEAD was deleted: what its cluster left. Without HEAD: "
                                "find and delete what deleted clusters left", cmd_delete), optional=True)
    de.add_argument("--yes", action="store_true", help="do not ask (scripts)")


def _from_image(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from-image", nargs="?", const="", default=None, metavar="IMAGE",
                   help="new workers start from this image of the project (`image list`), with the head's environment "
                        "and nothing to install (no IMAGE: HEAD-frozen, made from the head now when missing)")


def _head(p: argparse.ArgumentParser, optional: bool = False) -> argparse.ArgumentParser:
    if optional:
        p.add_argument("name", metavar="HEAD", nargs="?", default="",
                       help="the instance that runs Jupyter (name or id), or the name of a deleted one")
    else:
        p.add_argument("name", metavar="HEAD", help="the instance that runs Jupyter (name or id)")
    p.add_argument("--accept-host-key", metavar="SHA256:...", default="",
                   help="trust this host key fingerprint when the console log does not pin it (scripts)")
    return p


def _check_n(n: int | None, option: str) -> None:
    from tui.core.cloud.base import InvalidInput
    from tui.core.cluster.plan import MAX_WORKERS

    if n is not None and not 0 <= n <= MAX_WORKERS:
        raise InvalidInput(f"{option} {n}: expected 0 to {MAX_WORKERS} worker instances", f"e.g. {option} 2")


def cmd_create(args: argparse.Namespace, ctx: Context) -> int:
    _check_n(args.workers, "--workers")

    async def body(engine: Engine, _out: Printer) -> int:
        summary = await engine.cluster.create(args.name, args.workers, args.flavor,
                                              head_worker=False if args.no_head_worker else None, dashboard=False,
                                              from_image=args.from_image)
        _print_summary(ctx, summary)
        return EXIT_FAIL if summary.failed else EXIT_OK

    # An interrupt is answered by the core first: which worker instances exist (unjoined ones bill too).
    return with_engine(args, ctx, body, "Creating the cluster interrupted; what started keeps running")


def cmd_scale(args: argparse.Namespace, ctx: Context) -> int:
    _check_n(args.n, "N")

    async def body(engine: Engine, _out: Printer) -> int:
        summary = await engine.cluster.scale(args.name, args.n, None if args.yes else _confirm_yes, args.flavor,
                                             dashboard=False, from_image=args.from_image)
        _print_summary(ctx, summary)
        return EXIT_FAIL if summary.failed else EXIT_OK

    return with_engine(args, ctx, body, f"Scaling interrupted: see `{command('cluster', 'status', args.name)}`")


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    async def body(engine: Engine, _out: Printer) -> int:
        head = await asyncio.to_thread(engine.get_instance, args.name)
        state = await engine.cluster.status(head)
        tunnel = state.dashboard_url or None
        if args.json:
            ctx.json(status_json(state.scheduler, tunnel, state.status, state.problem, state.absent))
            return EXIT_OK if state.status is not None else EXIT_FAIL
        if state.status is None:
            err(f"no cluster answers on {head.name}: {state.problem}")
            _print_absent(ctx, state.absent, head.name)
            return EXIT_FAIL
        _print_status(ctx, state.status, tunnel, head.name, state.absent)
        return EXIT_OK

    return with_engine(args, ctx, body, "Status interrupted")


def cmd_dashboard(args: argparse.Namespace, ctx: Context) -> int:
    async def body(engine: Engine, _out: Printer) -> int:
        import webbrowser

        from tui.cli.runner import forever
        from tui.core.cluster.lifecycle import DASHBOARD

        head = await asyncio.to_thread(engine.get_instance, args.name)
        try:
            url = await engine.cluster.dashboard(head)
            ctx.print(f"Dask dashboard of {args.name}: {url}")
            if not args.no_browser and ctx.out.isatty() and not await asyncio.to_thread(webbrowser.open, url):
                say("No browser found here: open the URL above in yours.")
            ctx.print("The tunnel serves while this command runs; Ctrl+C closes it (the cluster keeps running).")
            ctx.out.flush()
            return await forever()
        finally:  # not re-opened by the app: this command's tunnel
            await engine.close_tunnel(head.id, DASHBOARD)

    return with_engine(args, ctx, body, f"Dashboard tunnel to {args.name} closed; the cluster keeps running")


def cmd_delete(args: argparse.Namespace, ctx: Context) -> int:
    async def body(engine: Engine, _out: Printer) -> int:
        async def typed(text: str) -> bool:
            from tui.cli.common import confirm_typed

            return await asyncio.to_thread(confirm_typed, text, args.name)

        if not args.name:
            return await _delete_leftovers(ctx, engine, args.yes)
        head_stays = await _exists(engine, args.name)
        deleted = await engine.cluster.delete(args.name, None if args.yes else typed)
        ctx.print(f"Cluster on {args.name} deleted: {', '.join(deleted) or 'no worker instances'} gone"
                  + (f"; the head {args.name} stays." if head_stays else "."))
        return EXIT_OK

    return with_engine(args, ctx, body, "Deleting the cluster interrupted: run it again to finish")


async def _exists(engine: Engine, name: str) -> bool:
    from tui.core.cloud.base import NotFound

    try:
        await asyncio.to_thread(engine.get_instance, name)
    except NotFound:
        return False
    return True


async def _delete_leftovers(ctx: Context, engine: Engine, assume_yes: bool) -> int:
    """`cluster delete` without HEAD: what deleted heads left (workers, groups), listed, then deleted."""
    from tui.core.units import plural

    left = await engine.cluster.leftovers()
    if not left:
        ctx.print("Nothing left over: every cluster's workers and security group have their head.")
        return EXIT_OK
    for item in left:
        ctx.print(item.text())
    ctx.out.flush()

    async def ask(_text: str) -> bool:
        return await _confirm_yes("Delete all of this")

    deleted = await engine.cluster.delete_leftovers(left, None if assume_yes else ask)
    ctx.print(f"Deleted what {plural(len(left), 'deleted cluster')} left: "
              + "; ".join(x.head + ": " + (", ".join(w.name for w in x.workers) or "no workers")
                          + (f", {x.group}" if x.group else "") for x in left)
              + f" ({plural(len(deleted), 'instance')}).")
    return EXIT_OK


async def _confirm_yes(text: str) -> bool:
    from tui.cli.runner import ask

    if not sys.stdin.isatty():
        from tui.core.cloud.base import InvalidInput

        raise InvalidInput("refusing to delete instances without a terminal to confirm on",
                           "pass --yes in scripts")
    return yes(await ask(f"{text}. Go ahead? [y/N] "))


# -- output ----------------------------------------------------------------------------------------------------


def status_json(scheduler: str, dashboard: str | None, status: ClusterStatus | None, problem: str = "",
                absent: Sequence[AbsentWorker] = ()) -> Any:
    """One object: `scheduler`, `dashboard` (the local URL or null), `workers` (one object per connected worker,
    then one per lost, starting or unjoined worker — `state` says which, `why` why; their numbers are null)."""
    workers: list[dict[str, Any]] = [] if status is None else [
        {"name": w.name, "address": w.address, "state": w.status, "threads": w.threads,
         "memory_used": w.memory_used, "memory_limit": w.memory_limit, "tasks": w.processing,
         "last_seen": w.last_seen} for w in status.workers]
    workers += [{"name": a.name, "address": None, "state": a.state, "why": a.why, "threads": None,
                 "memory_used": None, "memory_limit": None, "tasks": None, "last_seen": None} for a in absent]
    out: dict[str, Any] = {"scheduler": (status.scheduler if status else "") or scheduler, "dashboard": dashboard,
                           "workers": workers}
    if problem:
        out["problem"] = problem
    return out


def _print_status(ctx: Context, status: ClusterStatus, dashboard: str | None, head: str = "HEAD",
                  absent: Sequence[AbsentWorker] = ()) -> None:
    import time

    import humanize

    from tui.cli.common import table

    ctx.print(f"Scheduler {status.scheduler}; dashboard "
              + (dashboard or f"not forwarded here ({command('cluster', 'dashboard', head)})"))
    rows = [(w.name, w.status, str(w.threads),
             f"{humanize.naturalsize(w.memory_used, binary=True)} / "
             + (humanize.naturalsize(w.memory_limit, binary=True) if w.memory_limit else "no limit"),
             str(w.processing), humanize.naturaldelta(max(0.0, time.time() - w.last_seen)) + " ago")
            for w in status.workers]
    rows += [(a.name, a.state, "-", "-", "-", "-") for a in absent]
    ctx.print(table(rows, ("WORKER", "STATE", "THREADS", "MEMORY", "TASKS", "SEEN")))
    _print_absent(ctx, absent, head, table_shown=True)


def _print_absent(ctx: Context, absent: Sequence[AbsentWorker], head: str, table_shown: bool = False) -> None:
    """Why each lost, starting or unjoined worker is so, and what to do (they bill all the same)."""
    for a in absent:
        ctx.print(f"{a.name}: {a.state} ({a.why})" if table_shown else f"{a.name}  {a.state}  ({a.why})")
    if any(a.state in ("lost", "unjoined") for a in absent):
        ctx.print(f"Lost and unjoined workers still bill: `{command('cluster', 'create', head)}` (re)joins them, "
                  f"`{command('cluster', 'delete', head)}` deletes the cluster with them.")


def _print_summary(ctx: Context, summary: ClusterSummary) -> None:
    _print_status(ctx, summary.status, summary.dashboard or None, summary.head)
    for line in summary.failed:
        err(f"not in the cluster: {line}")
    if summary.removed:
        ctx.print(f"Retired and deleted: {', '.join(summary.removed)}")
