"""`image create NAME --name IMAGE [--wait] | list [--json] | delete IMAGE [--yes] [--delete-snapshots]`: freeze an
instance's environment as an image (Nova's createImage), list the project's images, delete one.

Each command drives the core through the engine (`engine.images`: `tui.core.images`); this module prints what it
returns.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from tui.cli.common import EXIT_FAIL, EXIT_OK, Context, err, say, table, yes
from tui.cli.parser import name_arg
from tui.cli.runner import engine_command
from tui.core.hints import command

if TYPE_CHECKING:
    from tui.cli.parser import Commands
    from tui.core.api import Engine
    from tui.core.images import ImageListing, ImageQuota
    from tui.core.models import Image


def add_parsers(commands: Commands) -> None:
    im = commands.group("image", "freeze an instance's environment as an image; the project's images",
                        "image_command")
    cr = im.add("create", "make an image of an instance (Nova's createImage; a volume-backed instance: Cinder "
                          "snapshots of its volumes)", cmd_create)
    cr.add_argument("name", type=name_arg, metavar="NAME", help="the instance (name or id)")
    cr.add_argument("--name", dest="image", required=True, metavar="IMAGE", help="the new image's name")
    cr.add_argument("--wait", action="store_true", help="wait until the image is active (progress on stderr)")
    commands.json(im.add("list", "the project's images first, then the others; the image quota", cmd_list))
    de = im.add("delete", "delete one of the project's images (asks; its volume snapshots are kept unless "
                          "--delete-snapshots)", cmd_delete)
    de.add_argument("name", type=name_arg, metavar="IMAGE",
                    help="image name or id (or a kept volume snapshot's, as `image list` shows them)")
    de.add_argument("--yes", action="store_true", help="do not ask (scripts)")
    de.add_argument("--delete-snapshots", action="store_true",
                    help="also delete the volume snapshots it maps (their data is lost)")


def _quota(q: ImageQuota | None) -> str:
    return f"Image quota: {q.text()} used" if q is not None else "Image quota: not published by this cloud"


def cmd_create(args: argparse.Namespace, ctx: Context) -> int:
    from tui.core.images import check_image_name

    check_image_name(args.image)  # exit 2 before the cloud is asked
    return _create(args, ctx)


@engine_command
def _create(args: argparse.Namespace, ctx: Context, engine: Engine) -> int:
    from tui.core.images import size

    try:
        made = engine.images.create(args.name, args.image, say, wait=args.wait)
    except KeyboardInterrupt:
        say(f"the cloud goes on making the image: see `{command('image', 'list')}`")
        raise
    img = made.image
    state = f"{img.status}, {size(img.size_bytes)}" if img.status == "active" and img.size_bytes else img.status
    ctx.print(f"Image {img.name} ({img.id}) of {made.instance.name}: {state}")
    for s in made.snapshots:
        ctx.print(f"  volume snapshot {s.name} ({s.id}, {s.size_gb} GB): {s.status}")
    if not args.wait and img.status != "active":
        say(f"the cloud finishes it: `{command('image', 'list')}` shows when it is active")
    say(_quota(made.quota))
    say(f"Launch from it: `{command('launch', 'NAME', '--image', img.name)}`")
    return EXIT_OK


def _row(img: Image, listing: ImageListing) -> tuple[str, ...]:
    from tui.core.images import size

    snaps = listing.snapshots_of(img)
    shown = (f"{sum(s.size_gb for s in snaps)} GB in {len(snaps)} snapshot{'s' if len(snaps) != 1 else ''}"
             if img.snapshot_ids else size(img.size_bytes) if img.size_bytes else "-")
    made = img.created_at.strftime("%Y-%m-%d %H:%M") if img.created_at else "-"
    return (img.name, img.status, shown, "own" if img.own else img.visibility or "-", made)


@engine_command
def cmd_list(args: argparse.Namespace, ctx: Context, engine: Engine) -> int:
    listing = engine.images.listing()
    if args.json:
        ctx.json({"images": [{**_plain(i), "snapshots": listing.snapshots_of(i)} for i in listing.images],
                  "quota": listing.quota, "kept_snapshots": listing.kept})
        return EXIT_OK
    ctx.print(table([_row(i, listing) for i in listing.images], ("NAME", "STATUS", "SIZE", "OWNER", "CREATED")))
    ctx.print(_quota(listing.quota))
    for s in listing.kept:
        ctx.print(f"Kept volume snapshot {s.name} ({s.id}, {s.size_gb} GB, {s.status}): no image maps it; "
                  f"`{command('image', 'delete', s.id)}` deletes it")
    return EXIT_OK


def _plain(img: Image) -> dict[str, object]:
    from tui.cli.common import to_jsonable

    data: dict[str, object] = to_jsonable(img)
    return data


@engine_command
def cmd_delete(args: argparse.Namespace, ctx: Context, engine: Engine) -> int:
    plan = engine.images.plan_delete(args.name)
    delete_snaps = args.delete_snapshots
    if not args.yes:
        if not sys.stdin.isatty():
            from tui.core.cloud.base import InvalidInput

            raise InvalidInput("refusing to delete without a terminal to confirm on", "pass --yes in scripts")
        say(plan.text())
        what = f"image {plan.image.name}" if plan.image else "that volume snapshot"
        if not yes(input(f"Delete {what}? [y/N] ")):
            err("not confirmed; nothing deleted")
            return EXIT_FAIL
        if plan.image is not None and plan.snapshots and not delete_snaps:
            delete_snaps = yes(input(f"Also delete its {len(plan.snapshots)} volume snapshot(s)? [y/N] "))
    engine.images.delete(plan, delete_snaps, say)
    return EXIT_OK
