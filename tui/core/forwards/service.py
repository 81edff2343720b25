"""The user's forwards at work: open, close, toggle, list, reopen the saved ones, and what the VM listens on.

A forward is a tunnel of the manager's (`RemoteManager.open_forward`, purpose `forward:LABEL`): self-healing,
127.0.0.1 only, counted. Saved ones live in the state (`ForwardRecord`, operations under its lock).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace

from tui.core.api import ManagerError
from tui.core.events import BackgroundFailed
from tui.core.forwards import (
    Forward,
    Listener,
    default_label,
    label_of,
    label_problem,
    listening,
    port_problem,
    purpose_of,
)
from tui.core.manager import RemoteManager
from tui.core.models import TunnelInfo
from tui.core.services import RemoteContext
from tui.core.state import ForwardRecord
from tui.core.traffic import read_counts

log = logging.getLogger(__name__)
LOOPBACK = "127.0.0.1"


class ForwardService:
    def __init__(self, manager: RemoteManager) -> None:
        self.manager = manager
        self.state = manager.state

    # -- open and close ------------------------------------------------------------------------------------------

    async def open(self, ctx: RemoteContext, remote_port: int, *, local_port: int | None = None, label: str = "",
                   remote_host: str = LOOPBACK, save: bool = False) -> Forward:
        """Forward 127.0.0.1:local → remote_host:remote_port on the instance (an open one of that label is reused):
        `local_port`, else the saved one, else the remote port's number — another free port when that one is
        taken (the result says so). `save`: kept, and opened again by the app and on reattach."""
        label = _checked(remote_port, local_port, label or default_label(remote_port))
        inst = ctx.instance
        record = self.state.forwards.get((inst.id, label))
        _same_target(record, inst.name, label, remote_host, remote_port)
        kept_port = record.local_port if record is not None else 0
        wanted = local_port or kept_port or remote_port
        info = await self.manager.open_forward(ctx, purpose_of(label), remote_port, remote_host=remote_host,
                                               local_port=wanted, strict=False)
        saved = save or record is not None
        if saved:  # the local port chosen is kept — unless the saved one was only busy now (another process has it)
            port = kept_port if kept_port and not local_port else info.local_port
            self.state.put_forward(ForwardRecord(inst.id, label, remote_port, remote_host, port, inst.name))
        return _from_info(info, inst.name, label, saved=saved, enabled=True, wanted=wanted)

    def save(self, instance_id: str, name: str, remote_port: int, *, local_port: int | None = None,
             label: str = "", remote_host: str = LOOPBACK) -> Forward:
        """Keep a forward without opening it here: the app and the next reattach open it."""
        label = _checked(remote_port, local_port, label or default_label(remote_port))
        _same_target(self.state.forwards.get((instance_id, label)), name, label, remote_host, remote_port)
        self.state.put_forward(ForwardRecord(instance_id, label, remote_port, remote_host, local_port or 0, name))
        return Forward(instance_id, name, label, remote_host, remote_port, local_port or 0, saved=True,
                       enabled=True, state="closed")

    async def close(self, instance_id: str, label: str, *, remove: bool) -> None:
        """Close the forward here; `remove`: forget the saved one too, else a saved one stays, disabled (not
        opened again until toggled on)."""
        await self.manager.close_tunnel(instance_id, purpose_of(label))
        record = self.state.forwards.get((instance_id, label))
        if record is None:
            return
        if remove:
            self.state.drop_forward(instance_id, label)
        elif record.enabled:
            self.state.put_forward(replace(record, enabled=False))

    async def toggle(self, ctx: RemoteContext, label: str) -> Forward | None:
        """Close the forward when open here, else open it (a saved one: as saved). The forward now open, or None
        when it was closed."""
        iid = ctx.instance.id
        info = self.manager.tunnel_info(iid, purpose_of(label))
        if info is not None:
            await self.close(iid, label, remove=False)
            return None
        record = self.state.forwards.get((iid, label))
        if record is None:
            raise ManagerError(f"no forward {label!r} on {ctx.instance.name}")
        return await self.open(ctx, record.remote_port, label=label,
                               remote_host=record.remote_host, save=True)

    async def reopen(self, contexts: Iterable[RemoteContext]) -> list[Forward]:
        """Open the saved, enabled forwards of these instances (the app's start, reattach, `forward NAME`). A
        failure is reported as `BackgroundFailed` (the others go on); the forwards opened."""
        records = self.state.forwards
        jobs = [(ctx, r) for ctx in contexts for r in records.values() if r.instance == ctx.instance.id and r.enabled]
        results = await asyncio.gather(*(self._reopen(ctx, r) for ctx, r in jobs))
        return [f for f in results if f is not None]

    async def _reopen(self, ctx: RemoteContext, record: ForwardRecord) -> Forward | None:
        try:
            return await self.open(ctx, record.remote_port, label=record.label,
                                   remote_host=record.remote_host, save=True)
        except ManagerError as exc:
            self.manager.emit(BackgroundFailed(ctx.instance.id, f"the saved forward {record.label} of "
                                               f"{ctx.instance.name}", str(exc)))
            return None

    # -- what there is -------------------------------------------------------------------------------------------

    def all(self, names: Mapping[str, str] | None = None) -> list[Forward]:
        """Every user forward: saved ones, the ones open here (live state and bytes), and the ones another process
        serves (their bytes from its traffic file). `names`: instance id -> name, where records have none."""
        names = dict(names or {})
        out: dict[tuple[str, str], Forward] = {}
        records = self.state.forwards
        for record in records.values():
            out[record.key] = Forward(record.instance, names.get(record.instance, record.name), record.label,
                                      record.remote_host, record.remote_port, record.local_port, saved=True,
                                      enabled=record.enabled, state="closed")
        elsewhere = read_counts(self.state.path.parent, others_only=True)
        for (iid, purpose, port), (bytes_in, bytes_out) in elsewhere.items():
            label = label_of(purpose)
            if label is None or self.manager.tunnel_info(iid, purpose) is not None:
                continue
            known = out.get((iid, label))
            out[(iid, label)] = Forward(
                iid, names.get(iid, known.name if known else iid), label,
                known.remote_host if known else "", known.remote_port if known else 0, port,
                saved=known is not None, enabled=known.enabled if known else True, state="open elsewhere",
                bytes_in=bytes_in, bytes_out=bytes_out)
        for info in self.manager.tunnels():
            label = label_of(info.purpose)
            if label is None:
                continue
            kept = records.get((info.instance, label))
            out[(info.instance, label)] = _from_info(
                info, names.get(info.instance, kept.name if kept else info.instance), label,
                saved=kept is not None, enabled=True)
        return sorted(out.values(), key=lambda f: (f.name, f.label))

    async def suggestions(self, ctx: RemoteContext) -> list[Listener]:
        """The TCP ports the VM listens on (sshd left out), with the process where visible."""
        conn = await self.manager.connection(ctx)
        try:
            result = await conn.run(listening.COMMAND, check=False, timeout=15)
        except Exception as exc:  # asyncssh errors, a lost connection, a timeout: one line for the user
            raise ManagerError(f"listing the ports {ctx.instance.name} listens on: {exc or type(exc).__name__}") \
                from exc
        ssh_port = ctx.target.port if ctx.target.via is None else 22
        return listening.parse(str(result.stdout or ""), ssh_port)


def _same_target(record: ForwardRecord | None, name: str, label: str, remote_host: str, remote_port: int) -> None:
    """A label names one saved forward: refuse to point it elsewhere (that would lose the saved one silently)."""
    if record is not None and (record.remote_host, record.remote_port) != (remote_host, remote_port):
        from tui.core.hints import command

        raise ManagerError(f"{name} already has a saved forward {label!r} to {record.remote_host}:"
                           f"{record.remote_port}: give another --label, or forget that one first with "
                           f"`{command('forward', 'close', name, label)}`")


def _checked(remote_port: int, local_port: int | None, label: str) -> str:
    from tui.core.cloud.base import InvalidInput
    from tui.core.hints import command

    for problem in (port_problem(remote_port, "remote port"),
                    None if local_port is None else port_problem(local_port, "local port"), label_problem(label)):
        if problem is not None:
            raise InvalidInput(problem, f"e.g. `{command('forward', 'NAME', '6006', '--label', 'tensorboard')}`")
    return label


def _from_info(info: TunnelInfo, name: str, label: str, *, saved: bool, enabled: bool, wanted: int = 0) -> Forward:
    return Forward(info.instance, name, label, info.remote_host, info.remote_port, info.local_port, saved=saved,
                   enabled=enabled, state=str(info.state), bytes_in=info.bytes_in, bytes_out=info.bytes_out,
                   wanted_port=wanted, error=info.error)
