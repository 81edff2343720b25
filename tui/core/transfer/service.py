"""A transfer for the engine: the instance by name, its verified connection (host key pinned or settled, the app's
key), its pinned OpenSSH command line, then `Transfer.run`."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tui.core.cloud.base import InvalidInput
from tui.core.transfer.channel import RemoteEnd
from tui.core.transfer.models import TransferRequest, TransferSummary
from tui.core.transfer.runner import ProgressFn, Transfer

# AES-GCM first (AES-NI): OpenSSH's default chacha20 is slower here; the same ciphers the app's asyncssh prefers.
CIPHERS = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr"

if TYPE_CHECKING:
    import asyncssh

    from tui.core.models import Instance
    from tui.core.services import RemoteContext

# the instance by name, its SSH context and its verified connection (the engine's)
Reach = Callable[[str], Awaitable[tuple["Instance", "RemoteContext", "asyncssh.SSHClientConnection"]]]


async def run_transfer(reach: Reach, req: TransferRequest, progress: ProgressFn | None = None,
                       say: Callable[[str], None] | None = None) -> TransferSummary:
    """Raises InvalidInput (bad paths: exit 2), NotFound (no such instance) or ManagerError (the VM's side)."""
    from tui.core.remote.connection import openssh_argv

    side = req.remote_side()
    if req.upload and not Path(req.src.path).expanduser().exists():  # said before asking the cloud
        raise InvalidInput(f"{req.src}: no such file or folder", "check the path (a local one)")
    transfer = Transfer(req, None, progress, say or (lambda _: None))

    async def connect() -> RemoteEnd:
        inst, ctx, conn = await reach(side.instance)  # the host key is settled here: OpenSSH then checks it strictly

        def openssh(command: str) -> list[str]:
            argv = openssh_argv(ctx.target, command, tty=False)
            return [argv[0], "-o", "BatchMode=yes", "-o", f"Ciphers={CIPHERS}", *argv[1:]]

        return RemoteEnd(inst.name, conn, openssh if shutil.which("ssh") else None)

    transfer.remote, _ = await asyncio.gather(connect(), transfer.prefetch())
    return await transfer.run()
