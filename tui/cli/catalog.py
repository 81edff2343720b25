"""`flavors`, `images`, `quota`: what the cloud offers and what the project may still use."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tui.cli.common import EXIT_OK, Context, ram, table, to_jsonable, used
from tui.cli.runner import engine_command

if TYPE_CHECKING:
    from tui.cli.parser import Commands
    from tui.core.api import Engine
    from tui.core.models import Quota


def add_parsers(commands: Commands) -> None:
    commands.json(commands.add("flavors", "list flavors with the guide's m1/c1 advice", cmd_flavors))
    commands.json(commands.add("images", "list images", cmd_images))
    commands.json(commands.add("quota", "show quota usage", cmd_quota))


@engine_command
def cmd_flavors(args: argparse.Namespace, ctx: Context, engine: Engine) -> int:
    flavors = engine.list_flavors()
    quota = engine.get_quota()
    if args.json:
        ctx.json([{**to_jsonable(f), "family": f.family.value, "hint": f.hint, "fits": quota.fits(f),
                   "misfit": quota.misfit(f)} for f in flavors])
        return EXIT_OK
    rows = [(f.name, str(f.vcpus), ram(f.ram_mb), f"{f.disk_gb} GB" if f.disk_gb else "-",
             "yes" if quota.fits(f) else "no: " + "; ".join(quota.misfit(f)), f.hint) for f in flavors]
    ctx.print(table(rows, ("NAME", "VCPUS", "RAM", "DISK", "FITS QUOTA", "GOOD FOR")))
    return EXIT_OK


@engine_command
def cmd_images(args: argparse.Namespace, ctx: Context, engine: Engine) -> int:
    import humanize

    images = engine.list_images()
    if args.json:
        ctx.json(images)
        return EXIT_OK
    rows = [(i.name, i.status, humanize.naturalsize(i.size_bytes, binary=True), f"{i.min_disk_gb} GB") for i in images]
    ctx.print(table(rows, ("NAME", "STATUS", "SIZE", "MIN DISK")))
    return EXIT_OK


def quota_rows(q: Quota) -> list[tuple[str, str]]:
    return [("RAM", used(q.ram_mb_used, q.ram_mb_limit, ram)), ("cores", used(q.cores_used, q.cores_limit)),
            ("instances", used(q.instances_used, q.instances_limit)),
            ("volumes", used(q.volumes_used, q.volumes_limit)),
            ("volume storage", used(q.gigabytes_used, q.gigabytes_limit, lambda g: f"{g} GB"))]


@engine_command
def cmd_quota(args: argparse.Namespace, ctx: Context, engine: Engine) -> int:
    q = engine.get_quota()
    if args.json:
        ctx.json(q)
        return EXIT_OK
    ctx.print(table(quota_rows(q), ("RESOURCE", "USED")))
    return EXIT_OK
