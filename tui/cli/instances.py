"""Instance commands: `list`, `show`, `launch`, `resize`, `stop`/`start`/`reboot`, `delete`, `console`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tui.cli.common import EXIT_FAIL, EXIT_OK, Context, confirm_typed, err, ram, say, table, uptime
from tui.cli.parser import name_arg
from tui.cli.runner import engine_command, with_engine
from tui.core.hints import command

if TYPE_CHECKING:
    from tui.cli.parser import Commands
    from tui.cli.printer import Printer
    from tui.core.api import Engine
    from tui.core.cluster.deletion import Deletion
    from tui.core.models import Instance


def add_parsers(commands: Commands) -> None:
    commands.json(commands.add("list", "list instances", cmd_list))
    la = commands.add("launch", "launch an instance (the guide's step 1)", cmd_launch)
    la.add_argument("name")
    la.add_argument("--flavor", default=None, type=name_arg,
                    help="default: the profile's, else the smallest m1.* that fits")
    la.add_argument("--image", default=None, type=name_arg, help="default: the profile's, else the newest Ubuntu")
    la.add_argument("--volume-size", type=int, default=None, metavar="GB",
                    help="boot volume size, at least 16 (default: the profile's, else 16)")
    la.add_argument("--key", default=None, type=name_arg, help="key pair name (default: the app's own key pair)")
    la.add_argument("--network", default=None, type=name_arg, help="default: the profile's, else the project's network")
    la.add_argument("--delete-volume-on-termination", action="store_true",
                    help="delete the boot volume with the instance (default: keep it)")
    la.add_argument("--wait", action="store_true", help="wait until ACTIVE with an address")
    commands.json(la)

    rs = commands.add("resize", "resize an instance to FLAVOR, then --confirm (or --revert) it", cmd_resize)
    rs.add_argument("name", type=name_arg)
    rs.add_argument("flavor", nargs="?", default="")
    grp = rs.add_mutually_exclusive_group()
    grp.add_argument("--confirm", action="store_true", help="confirm a resize waiting in VERIFY_RESIZE (no FLAVOR)")
    grp.add_argument("--revert", action="store_true", help="revert a resize waiting in VERIFY_RESIZE (no FLAVOR)")

    for name, help_ in (("stop", "shut down an instance (keeps its disk)"), ("start", "start a stopped instance"),
                        ("reboot", "reboot an instance")):
        commands.add(name, help_, _power(name)).add_argument("name", type=name_arg)
    commands.add("console", "print an instance's console log", cmd_console).add_argument("name", type=name_arg)
    commands.json(commands.add("show", "show an instance's details", cmd_show)).add_argument("name", type=name_arg)

    d = commands.add("delete", "delete an instance", cmd_delete)
    d.add_argument("name", type=name_arg)
    d.add_argument("--yes", action="store_true", help="do not ask (scripts)")
    d.add_argument("--delete-volumes", action="store_true", help="also delete its boot and attached volumes")


@engine_command
def cmd_list(args: argparse.Namespace, ctx: Context, engine: Engine) -> int:
    from datetime import UTC, datetime

    instances = sorted(engine.list_instances(), key=lambda i: i.name)
    if args.json:
        ctx.json(instances)
        return EXIT_OK
    if not instances:
        ctx.print(f"No instances. Launch one with: {command('launch', 'NAME')}")
        return EXIT_OK
    now = datetime.now(UTC)
    rows = [(i.name, i.status, i.flavor_name, i.ip or "-", uptime(i, now)) for i in instances]
    ctx.print(table(rows, ("NAME", "STATUS", "FLAVOR", "IP", "UPTIME")))
    return EXIT_OK


@engine_command
def cmd_show(args: argparse.Namespace, ctx: Context, engine: Engine) -> int:
    inst = engine.get_instance(args.name)
    if args.json:
        ctx.json(inst)
        return EXIT_OK
    addresses = ", ".join(f"{a.addr} ({a.kind}, {a.network})" for a in inst.addresses) or "-"
    status = inst.status + (f" ({inst.task_state})" if inst.task_state else "")
    rows = [("name", inst.name), ("id", inst.id), ("status", status),
            ("flavor", f"{inst.flavor_name} ({inst.vcpus} vCPU, {ram(inst.ram_mb)} RAM)"),
            ("addresses", addresses), ("ssh", f"{inst.ssh_user or ctx.settings.ssh.user}@{inst.ip}:{inst.ssh_port}"),
            ("key pair", inst.key_name or "-"), ("volumes", ", ".join(inst.volume_ids) or "-"),
            ("created", inst.created_at.isoformat() if inst.created_at else "-"), ("uptime", uptime(inst))]
    if inst.fault:
        rows.append(("fault", inst.fault))
    ctx.print(table(rows, ("FIELD", "VALUE")))
    return EXIT_OK


def check_public_key_file(path: Path) -> str:
    """The OpenSSH public key line in `path`, or InvalidInput naming the file and what is wrong."""
    from tui.core.cloud.base import InvalidInput

    try:
        public = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise InvalidInput(f"{path}: cannot read ({reason})",
                           "give a public key file like ~/.ssh/id_ed25519.pub") from None
    if not public.startswith(("ssh-", "ecdsa-", "sk-")) or "PRIVATE KEY" in public:
        raise InvalidInput(f"{path}: not an OpenSSH public key", "give the .pub file, never the private key")
    return public


def cmd_launch(args: argparse.Namespace, ctx: Context) -> int:
    from tui.core.cloud.launch import check_name, check_volume_size

    check_name(args.name)  # before any API call
    d = ctx.settings.launch
    volume_size_gb = check_volume_size(d.volume_size_gb if args.volume_size is None else args.volume_size)
    return with_engine(args, ctx, lambda engine, _: _launch(args, ctx, engine, volume_size_gb))


def _launch(args: argparse.Namespace, ctx: Context, engine: Engine, volume_size_gb: int) -> int:
    from tui.conventions import IMPORT_KEY_PREFIX
    from tui.core.cloud.base import InvalidInput, NotFound
    from tui.core.cloud.launch import plan_launch

    d = ctx.settings.launch
    if args.name in {i.name for i in engine.list_instances()}:
        raise InvalidInput(f"an instance named {args.name!r} already exists", "pick another name")
    key_name = args.key or d.key_name
    if key_name.startswith(IMPORT_KEY_PREFIX):  # import that public key first (the profile's launch.key_name)
        check_public_key_file(Path(key_name[len(IMPORT_KEY_PREFIX):]).expanduser())
    elif key_name and key_name not in {k.name for k in engine.list_keypairs()}:
        raise NotFound(f"key pair {key_name!r} not found", f"see `{command('keypair', 'list')}`, or omit --key")
    plan = plan_launch(
        args.name, flavors=engine.list_flavors(), images=engine.list_images(), networks=engine.list_networks(),
        quota=engine.get_quota(), key_name=key_name, flavor=args.flavor or d.flavor, image=args.image or d.image,
        network=args.network or d.network, volume_size_gb=volume_size_gb,
        delete_volume_on_termination=args.delete_volume_on_termination or d.delete_volume_on_termination,
    )
    for note in plan.notes:
        say(f"Chose {note}")
    inst = engine.launch(plan.spec, say, wait=args.wait)
    if args.json:
        ctx.json(inst)
    else:
        ctx.print(f"{inst.name}  {inst.status}  {inst.ip or 'no address yet'}")
    return EXIT_OK


def cmd_resize(args: argparse.Namespace, ctx: Context) -> int:
    from tui.core.cloud.base import InvalidInput

    if (args.confirm or args.revert) and args.flavor:
        flag = "--confirm" if args.confirm else "--revert"
        raise InvalidInput(f"resize {flag} takes no FLAVOR ({args.flavor!r}): it {flag[2:]}s the resize already "
                           "waiting in VERIFY_RESIZE",
                           f"first `{command('resize', args.name, args.flavor)}`, then "
                           f"`{command('resize', args.name, flag)}`")
    if not (args.confirm or args.revert or args.flavor):
        raise InvalidInput("resize needs a FLAVOR (or --confirm / --revert)", f"see `{command('flavors')}`")
    return with_engine(args, ctx, lambda engine, _: _resize(args, ctx, engine))


def _resize(args: argparse.Namespace, ctx: Context, engine: Engine) -> int:
    if args.confirm or args.revert:
        inst = engine.confirm_resize(args.name) if args.confirm else engine.revert_resize(args.name)
        ctx.print(f"{inst.name}: {'confirmed' if args.confirm else 'reverted'}, now {inst.flavor_name} {inst.status}")
        return EXIT_OK
    inst = engine.resize(args.name, args.flavor)
    if inst.status == "VERIFY_RESIZE":
        ctx.print(f"{inst.name} now runs as {inst.flavor_name}; check it, then run "
                  f"`{command('resize', inst.name, '--confirm')}` (or --revert)")
    else:
        ctx.print(f"{inst.name}: {inst.status} {inst.flavor_name}")
    return EXIT_OK


def _power(action: str) -> Callable[[argparse.Namespace, Context], int]:
    @engine_command
    def handler(args: argparse.Namespace, ctx: Context, engine: Engine) -> int:
        act: Callable[[str], Instance] = {"stop": engine.stop, "start": engine.start, "reboot": engine.reboot}[action]
        inst = act(args.name)
        ctx.print(f"{inst.name}: {inst.status}")
        return EXIT_OK

    return handler


@engine_command
def cmd_console(args: argparse.Namespace, ctx: Context, engine: Engine) -> int:
    ctx.out.write(engine.console_log(args.name))
    return EXIT_OK


def cmd_delete(args: argparse.Namespace, ctx: Context) -> int:
    """Delete an instance through the core's one delete (the app's ctrl+d too): the Dask cluster it heads goes
    with it (workers, their volumes, the security group, the tunnels), and the prompt says so."""
    import asyncio

    from tui.core.errors import Cancelled

    declined: list[bool] = []

    async def body(engine: Engine, _printer: Printer) -> int:
        inst = await asyncio.to_thread(engine.get_instance, args.name)

        async def ask(plan: Deletion) -> bool | None:
            if args.yes:
                return bool(args.delete_volumes)
            if await asyncio.to_thread(confirm_typed, plan.prompt(args.delete_volumes), inst.name):
                return bool(args.delete_volumes)
            declined.append(True)
            return None

        try:
            plan = await engine.delete_instance(inst, ask, args.delete_volumes)
        except Cancelled:
            if declined:
                err("not confirmed; nothing deleted")
                return EXIT_FAIL
            raise
        ctx.print(deleted_line(plan, args.delete_volumes))
        return EXIT_OK

    return with_engine(args, ctx, body, f"Deleting {args.name} interrupted: run it again to finish")


def deleted_line(plan: Deletion, delete_volumes: bool) -> str:
    from tui.core.units import plural

    inst = plan.instance
    line = f"Deleted {inst.name}; " + ("volumes deleted" if delete_volumes else "volumes kept")
    if plan.takes_cluster:
        gone = [w.name for w in plan.workers]
        what = f"{plural(len(gone), 'worker instance')} ({', '.join(gone)}) with their volumes" if gone else ""
        group = f"security group {plan.group}" if plan.group else ""
        whose = plan.leftover_of or inst.name
        line += f". The Dask cluster of {whose} is deleted too: " + " and ".join(p for p in (what, group) if p)
    return line + "."
