"""Headless commands: the same core as the app, for scripts and terminals without a full screen."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import humanize

from tui.cli import remote as cli_remote
from tui.core.cloud.base import Cloud, CloudError, InvalidInput
from tui.core.config import Settings
from tui.core.models import Instance, Quota
from tui.startup import err, prepare

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class Context:
    """What a command needs; the cloud connection is made on first use (it imports openstacksdk)."""

    def __init__(self, settings: Settings, out: Any = None) -> None:
        self.settings = settings
        self.out = out or sys.stdout
        self._cloud: Cloud | None = None

    @property
    def cloud(self) -> Cloud:
        if self._cloud is None:
            self._cloud = make_cloud(self.settings)
        return self._cloud

    def print(self, text: str = "") -> None:
        print(text, file=self.out)

    def json(self, data: Any) -> None:
        json.dump(to_jsonable(data), self.out, indent=2)
        self.out.write("\n")


def make_cloud(settings: Settings) -> Cloud:
    from tui.core.cloud.openstack_cloud import OpenStackCloud

    return OpenStackCloud.from_config(settings.cloud, settings.clouds_yaml or None)


def run(args: argparse.Namespace) -> int:
    """Run one command (the full-screen app is started by __main__, through `tui.startup` too)."""
    prepared = prepare(args)
    if isinstance(prepared, int):
        return prepared
    settings, demo = prepared
    if args.command == "sandbox":
        import tempfile

        from tui.sandbox import serve

        state_dir = Path(args.state_dir) if args.state_dir else Path(tempfile.mkdtemp(prefix="cades-sandbox-"))
        return int(serve(args.port, state_dir))
    try:
        if demo is not None:
            demo.ensure()
        handler = COMMANDS[args.command]
        return handler(args, Context(settings))
    except InvalidInput as exc:
        err(str(exc))
        return EXIT_USAGE
    except CloudError as exc:
        err(str(exc))
        return EXIT_FAIL
    finally:
        if demo is not None:
            demo.stop()


# ------------------------------------------------------------------ formatting
def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Instance):
            data["metadata"] = dict(value.metadata)
            data["ip"], data["ssh_port"] = value.ip, value.ssh_port
            data["uptime_s"] = value.uptime_seconds()
        return data
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def uptime(inst: Instance, now: datetime | None = None) -> str:
    seconds = inst.uptime_seconds(now)
    return "-" if seconds is None else humanize.naturaldelta(seconds)


def ram(mb: int) -> str:
    return humanize.naturalsize(mb * 1024 * 1024, binary=True, format="%.0f")


def used(used_: int, limit: int, unit: Callable[[int], str] = str) -> str:
    return f"{unit(used_)} of {'unlimited' if limit < 0 else unit(limit)}"


# ------------------------------------------------------------------ commands
def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    instances = sorted(ctx.cloud.list_instances(), key=lambda i: i.name)
    if args.json:
        ctx.json(instances)
        return EXIT_OK
    if not instances:
        ctx.print("No instances. Launch one with: cades-tui launch NAME")
        return EXIT_OK
    now = datetime.now(UTC)
    rows = [(i.name, i.status, i.flavor_name, i.ip or "-", uptime(i, now)) for i in instances]
    ctx.print(table(rows, ("NAME", "STATUS", "FLAVOR", "IP", "UPTIME")))
    return EXIT_OK


def cmd_show(args: argparse.Namespace, ctx: Context) -> int:
    inst = ctx.cloud.get_instance(args.name)
    if args.json:
        ctx.json(inst)
        return EXIT_OK
    addresses = ", ".join(f"{a.addr} ({a.kind}, {a.network})" for a in inst.addresses) or "-"
    rows = [("name", inst.name), ("id", inst.id), ("status", inst.status + (f" ({inst.task_state})"
                                                                            if inst.task_state else "")),
            ("flavor", f"{inst.flavor_name} ({inst.vcpus} vCPU, {ram(inst.ram_mb)} RAM)"),
            ("addresses", addresses), ("ssh", f"{inst.ssh_user or ctx.settings.ssh.user}@{inst.ip}:{inst.ssh_port}"),
            ("key pair", inst.key_name or "-"), ("volumes", ", ".join(inst.volume_ids) or "-"),
            ("created", inst.created_at.isoformat() if inst.created_at else "-"), ("uptime", uptime(inst))]
    if inst.fault:
        rows.append(("fault", inst.fault))
    ctx.print(table(rows, ("FIELD", "VALUE")))
    return EXIT_OK


def cmd_flavors(args: argparse.Namespace, ctx: Context) -> int:
    flavors = ctx.cloud.list_flavors()
    quota = ctx.cloud.get_quota()
    if args.json:
        ctx.json([{**to_jsonable(f), "family": f.family.value, "hint": f.hint, "fits": quota.fits(f),
                   "misfit": quota.misfit(f)} for f in flavors])
        return EXIT_OK
    rows = [(f.name, str(f.vcpus), ram(f.ram_mb), f"{f.disk_gb} GB" if f.disk_gb else "-",
             "yes" if quota.fits(f) else "no: " + "; ".join(quota.misfit(f)), f.hint) for f in flavors]
    ctx.print(table(rows, ("NAME", "VCPUS", "RAM", "DISK", "FITS QUOTA", "GOOD FOR")))
    return EXIT_OK


def cmd_images(args: argparse.Namespace, ctx: Context) -> int:
    images = ctx.cloud.list_images()
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


def cmd_quota(args: argparse.Namespace, ctx: Context) -> int:
    q = ctx.cloud.get_quota()
    if args.json:
        ctx.json(q)
        return EXIT_OK
    ctx.print(table(quota_rows(q), ("RESOURCE", "USED")))
    return EXIT_OK


def cmd_launch(args: argparse.Namespace, ctx: Context) -> int:
    from tui.core.cloud.launch import check_name, plan_launch
    from tui.core.keys import KeyStore
    from tui.core.services import launch_instance

    check_name(args.name)  # before any API call
    d = ctx.settings.launch
    cloud = ctx.cloud
    if args.name in {i.name for i in cloud.list_instances()}:
        raise InvalidInput(f"an instance named {args.name!r} already exists", "pick another name")
    key_name = args.key or d.key_name
    if key_name and key_name not in {k.name for k in cloud.list_keypairs()}:
        raise InvalidInput(f"key pair {key_name!r} not found", "see `cades-tui keypair list`, or omit --key")
    plan = plan_launch(
        args.name, flavors=cloud.list_flavors(), images=cloud.list_images(), networks=cloud.list_networks(),
        quota=cloud.get_quota(), key_name=key_name, flavor=args.flavor or d.flavor, image=args.image or d.image,
        network=args.network or d.network, volume_size_gb=args.volume_size or d.volume_size_gb,
        delete_volume_on_termination=args.delete_volume_on_termination or d.delete_volume_on_termination,
    )
    for note in plan.notes:
        print(f"Chose {note}", file=sys.stderr)
    progress: Callable[[str], None] = lambda m: print(m, file=sys.stderr)  # noqa: E731
    inst = launch_instance(cloud, plan.spec, progress, KeyStore(), wait=args.wait)
    if args.json:
        ctx.json(inst)
    else:
        ctx.print(f"{inst.name}  {inst.status}  {inst.ip or 'no address yet'}")
    return EXIT_OK


def cmd_resize(args: argparse.Namespace, ctx: Context) -> int:
    cloud = ctx.cloud
    if args.confirm or args.revert:
        inst = cloud.confirm_resize(args.name) if args.confirm else cloud.revert_resize(args.name)
        ctx.print(f"{inst.name}: {'confirmed' if args.confirm else 'reverted'}, now {inst.flavor_name} {inst.status}")
        return EXIT_OK
    if not args.flavor:
        raise InvalidInput("resize needs a FLAVOR (or --confirm / --revert)", "see `cades-tui flavors`")
    inst = cloud.resize(args.name, args.flavor)
    if inst.status == "VERIFY_RESIZE":
        ctx.print(f"{inst.name} now runs as {inst.flavor_name}; check it, then run "
                  f"`cades-tui resize {inst.name} --confirm` (or --revert)")
    else:
        ctx.print(f"{inst.name}: {inst.status} {inst.flavor_name}")
    return EXIT_OK


def _power(action: str) -> Callable[[argparse.Namespace, Context], int]:
    def handler(args: argparse.Namespace, ctx: Context) -> int:
        inst = getattr(ctx.cloud, action)(args.name)
        ctx.print(f"{inst.name}: {inst.status}")
        return EXIT_OK

    return handler


def cmd_console(args: argparse.Namespace, ctx: Context) -> int:
    ctx.out.write(ctx.cloud.console_log(args.name))
    return EXIT_OK


def confirm_typed(prompt: str, expected: str) -> bool:
    """Ask on a terminal for `expected` to be typed; refuse when there is no terminal."""
    if not sys.stdin.isatty():
        raise InvalidInput("refusing a destructive action without a terminal to confirm on", "pass --yes in scripts")
    try:
        answer = input(f"{prompt}\nType {expected!r} to confirm: ")
    except EOFError:
        return False
    return answer.strip() == expected


def cmd_delete(args: argparse.Namespace, ctx: Context) -> int:
    inst = ctx.cloud.get_instance(args.name)
    volumes = len(inst.volume_ids)
    fate = (f"its {volumes} volume(s) (boot volume included) will be DELETED" if args.delete_volumes
            else f"its {volumes} volume(s) are kept (use --delete-volumes to delete them)")
    if not args.yes and not confirm_typed(f"Delete instance {inst.name} ({inst.status}, {inst.ip or 'no IP'}): "
                                          f"anything not on a kept volume is lost; {fate}.", inst.name):
        err("not confirmed; nothing deleted")
        return EXIT_FAIL
    ctx.cloud.delete(inst.id, delete_volumes=args.delete_volumes)
    from tui.core.keys import KeyStore

    KeyStore().forget(inst.id)
    ctx.print(f"Deleted {inst.name}; " + ("volumes deleted" if args.delete_volumes else "volumes kept"))
    return EXIT_OK


def cmd_keypair(args: argparse.Namespace, ctx: Context) -> int:
    from tui.core.keys import KeyStore

    if args.keypair_command == "list":
        pairs = ctx.cloud.list_keypairs()
        if args.json:
            ctx.json(pairs)
        else:
            store = KeyStore()
            rows = [(k.name, k.fingerprint, "yes" if store.private_path(k.name).exists() else "no") for k in pairs]
            ctx.print(table(rows, ("NAME", "FINGERPRINT", "PRIVATE KEY HERE")))
        return EXIT_OK
    if args.keypair_command == "import":
        path = Path(args.file).expanduser()
        try:
            public = path.read_text().strip()
        except OSError as exc:
            raise InvalidInput(f"{path}: cannot read ({exc.strerror})",
                               "give a public key file like ~/.ssh/id_ed25519.pub") from None
        if not public.startswith(("ssh-", "ecdsa-", "sk-")) or "PRIVATE KEY" in public:
            raise InvalidInput(f"{path}: not an OpenSSH public key", "give the .pub file, never the private key")
        kp = ctx.cloud.import_keypair(args.name or path.name.removesuffix(".pub"), public)
        ctx.print(f"Imported key pair {kp.name} ({kp.fingerprint})")
        return EXIT_OK
    try:
        path, public = KeyStore().generate(args.name)
    except (ValueError, FileExistsError) as exc:
        raise InvalidInput(str(exc), "pick another name") from None
    kp = ctx.cloud.import_keypair(args.name, public)
    ctx.print(f"Generated key pair {kp.name} ({kp.fingerprint}); private key saved to {path} (mode 600)")
    return EXIT_OK


def cmd_volume(args: argparse.Namespace, ctx: Context) -> int:
    cloud = ctx.cloud
    sub = args.volume_command
    if sub == "list":
        volumes = cloud.list_volumes()
        if args.json:
            ctx.json(volumes)
            return EXIT_OK
        names = {i.id: i.name for i in cloud.list_instances()}
        rows = [(v.name, f"{v.size_gb} GB", v.status, ", ".join(names.get(s, s) for s in v.attached_to) or "-",
                 v.device or "-") for v in volumes]
        ctx.print(table(rows, ("NAME", "SIZE", "STATUS", "ATTACHED TO", "DEVICE")))
        return EXIT_OK
    if sub == "create":
        if args.size < 1:
            raise InvalidInput(f"--size {args.size}: a volume needs at least 1 GB", "e.g. --size 50")
        vol = cloud.create_volume(args.name, args.size)
        if args.attach:
            vol = cloud.attach_volume(args.attach, vol.id)
        ctx.print(f"Created {vol.name} ({vol.size_gb} GB, {vol.status}" + (f", {vol.device})" if vol.device else ")"))
        return EXIT_OK
    if sub == "detach":
        vol = cloud.detach_volume(args.name)
        ctx.print(f"Detached {vol.name}")
        return EXIT_OK
    vol_list = [v for v in cloud.list_volumes() if args.name in (v.id, v.name)]
    if not vol_list:
        raise InvalidInput(f"volume {args.name!r} not found", "see `cades-tui volume list`")
    v = vol_list[0]
    if not args.yes and not confirm_typed(f"Delete volume {v.name} ({v.size_gb} GB): all data on it is lost.", v.name):
        err("not confirmed; nothing deleted")
        return EXIT_FAIL
    cloud.delete_volume(v.id)
    ctx.print(f"Deleted volume {v.name}")
    return EXIT_OK


def cmd_commands(args: argparse.Namespace, ctx: Context) -> int:
    """Every command the app ran on an instance (time, exit code, duration; secrets masked), to read or export."""
    from tui.core import paths
    from tui.core.remote.commands import CommandLog

    inst = ctx.cloud.get_instance(args.name)
    log = CommandLog.for_instance(paths.state_dir(), inst.id)
    text = log.read()
    if args.output:
        Path(args.output).expanduser().write_text(text, encoding="utf-8")
        ctx.print(f"Wrote {len(text.splitlines())} lines of {inst.name}'s command log to {args.output}")
        return EXIT_OK
    ctx.out.write(text or f"No commands run on {inst.name} yet (the log is {log.path}).\n")
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace, Context], int]] = {
    "commands": cmd_commands,
    "list": cmd_list,
    "show": cmd_show,
    "flavors": cmd_flavors,
    "images": cmd_images,
    "quota": cmd_quota,
    "launch": cmd_launch,
    "resize": cmd_resize,
    "stop": _power("stop"),
    "start": _power("start"),
    "reboot": _power("reboot"),
    "console": cmd_console,
    "delete": cmd_delete,
    "keypair": cmd_keypair,
    "volume": cmd_volume,
}




COMMANDS.update(cli_remote.COMMANDS)  # jupyter, tunnel, open, status
