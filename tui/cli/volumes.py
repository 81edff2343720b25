"""`volume list | create NAME --size GB [--attach INSTANCE] | detach NAME | delete NAME`: storage volumes."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tui.cli.common import EXIT_FAIL, EXIT_OK, Context, confirm_typed, err, table
from tui.cli.parser import name_arg
from tui.cli.runner import engine_command, with_engine
from tui.core.hints import command

if TYPE_CHECKING:
    from tui.cli.parser import Commands
    from tui.core.api import Engine
    from tui.core.models import Volume


def add_parsers(commands: Commands) -> None:
    vo = commands.group("volume", "storage volumes", "volume_command")
    commands.json(vo.add("list", "list volumes", cmd_list))
    vc = vo.add("create", "create (and attach) a volume", cmd_create)
    vc.add_argument("name")
    vc.add_argument("--size", type=int, required=True, metavar="GB")
    vc.add_argument("--attach", metavar="INSTANCE", default=None, type=name_arg,
                    help="attach it to this instance (checked first)")
    vo.add("detach", "detach a volume", cmd_detach).add_argument("name", type=name_arg)
    vx = vo.add("delete", "delete a volume", cmd_delete)
    vx.add_argument("name", type=name_arg)
    vx.add_argument("--yes", action="store_true", help="do not ask (scripts)")


@engine_command
def cmd_list(args: argparse.Namespace, ctx: Context, engine: Engine) -> int:
    volumes = engine.list_volumes()
    if args.json:
        ctx.json(volumes)
        return EXIT_OK
    names = {i.id: i.name for i in engine.list_instances()}
    rows = [(v.name, f"{v.size_gb} GB", v.status, ", ".join(names.get(s, s) for s in v.attached_to) or "-",
             v.device or "-") for v in volumes]
    ctx.print(table(rows, ("NAME", "SIZE", "STATUS", "ATTACHED TO", "DEVICE")))
    return EXIT_OK


def cmd_create(args: argparse.Namespace, ctx: Context) -> int:
    from tui.core.cloud.base import InvalidInput
    from tui.core.cloud.launch import check_volume_name

    check_volume_name(args.name)
    if args.size < 1:
        raise InvalidInput(f"--size {args.size}: a volume needs at least 1 GB", "e.g. --size 50")
    return with_engine(args, ctx, lambda engine, _: _create(args, ctx, engine))


def _create(args: argparse.Namespace, ctx: Context, engine: Engine) -> int:
    server = engine.get_instance(args.attach) if args.attach else None  # no such instance: nothing is created
    vol = engine.create_volume(args.name, args.size)
    if server is not None:
        vol = engine.attach_volume(server.id, vol.id)
    ctx.print(f"Created {vol.name} ({vol.size_gb} GB, {vol.status}" + (f", {vol.device})" if vol.device else ")"))
    return EXIT_OK


@engine_command
def cmd_detach(args: argparse.Namespace, ctx: Context, engine: Engine) -> int:
    vol = engine.detach_volume(args.name)
    ctx.print(f"Detached {vol.name}")
    return EXIT_OK


def find_volume(engine: Engine, name_or_id: str) -> Volume:
    """The volume by id or name; NotFound (exit 1, like an unknown instance) when there is none."""
    from tui.core.cloud.base import NotFound

    for v in engine.list_volumes():
        if name_or_id in (v.id, v.name):
            return v
    raise NotFound(f"volume {name_or_id!r} not found", f"see `{command('volume', 'list')}`")


@engine_command
def cmd_delete(args: argparse.Namespace, ctx: Context, engine: Engine) -> int:
    v = find_volume(engine, args.name)
    if not args.yes and not confirm_typed(f"Delete volume {v.name} ({v.size_gb} GB): all data on it is lost.", v.name):
        err("not confirmed; nothing deleted")
        return EXIT_FAIL
    engine.delete_volume(v.id)
    ctx.print(f"Deleted volume {v.name}")
    return EXIT_OK
