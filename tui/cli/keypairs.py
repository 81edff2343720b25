"""`keypair list | import FILE | generate NAME`: the key pairs the cloud puts on new instances."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

from tui.cli.common import EXIT_OK, Context, table
from tui.cli.runner import engine_command, with_engine

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")  # as tui.core.keys names the key pairs it generates

if TYPE_CHECKING:
    from tui.cli.parser import Commands
    from tui.core.api import Engine
    from tui.core.models import Keypair


def add_parsers(commands: Commands) -> None:
    kp = commands.group("keypair", "list, import or generate key pairs", "keypair_command")
    commands.json(kp.add("list", "list key pairs", cmd_list))
    ki = kp.add("import", "import a public key file", cmd_import)
    ki.add_argument("file")
    ki.add_argument("--name", default="", help="key pair name (default: the file's stem)")
    kp.add("generate", "generate an ed25519 key pair and import it", cmd_generate).add_argument("name")


@engine_command
def cmd_list(args: argparse.Namespace, ctx: Context, engine: Engine) -> int:
    from tui.core.keys import KeyStore

    pairs = engine.list_keypairs()
    if args.json:
        ctx.json(pairs)
        return EXIT_OK
    store = KeyStore()
    rows = [(k.name, k.fingerprint, "yes" if store.private_for(k.public_key, k.fingerprint) else "no") for k in pairs]
    ctx.print(table(rows, ("NAME", "FINGERPRINT", "PRIVATE KEY HERE")))
    return EXIT_OK


def cmd_import(args: argparse.Namespace, ctx: Context) -> int:
    """Checked before any API call: the file is a public key, the name is allowed."""
    from pathlib import Path

    from tui.cli.instances import check_public_key_file
    from tui.core.cloud.base import InvalidInput

    path = Path(args.file).expanduser()
    public = check_public_key_file(path)
    name = args.name or path.name.removesuffix(".pub")
    if not _NAME_RE.match(name):
        raise InvalidInput(f"key pair name {name!r} is not allowed",
                           "use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit (--name NAME)")
    return with_engine(args, ctx, lambda engine, _: _said(ctx, engine.import_keypair(name, public)))


def _said(ctx: Context, kp: Keypair) -> int:
    ctx.print(f"Imported key pair {kp.name} ({kp.fingerprint})")
    return EXIT_OK


@engine_command
def cmd_generate(args: argparse.Namespace, ctx: Context, engine: Engine) -> int:
    from tui.core.cloud.base import InvalidInput
    from tui.core.keys import KeyStore

    try:
        path, public = KeyStore().generate(args.name)
    except (ValueError, FileExistsError) as exc:
        raise InvalidInput(str(exc), "pick another name") from None
    kp = engine.import_keypair(args.name, public)
    ctx.print(f"Generated key pair {kp.name} ({kp.fingerprint}); private key saved to {path} (mode 600)")
    return EXIT_OK
