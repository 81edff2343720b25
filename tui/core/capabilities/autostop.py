"""`engine.autostop`: the watchdog on each VM (`tui.core.autostop.service`) set, kept, turned off and read, and with
each refresh of the instances its state read again (`tui.core.api.AutostopApi`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tui.core.autostop.policy import Policy
from tui.core.autostop.service import AutostopError, AutostopService
from tui.core.autostop.status import AutostopStatus
from tui.core.capabilities.errors import as_manager_error
from tui.core.cloud.base import Cloud, InvalidInput
from tui.core.config import Settings
from tui.core.errors import ManagerError
from tui.core.events import Emit
from tui.core.manager import RemoteManager
from tui.core.models import Instance
from tui.core.remote.commands import CommandLog
from tui.core.services import RemoteContext

log = logging.getLogger(__name__)
LOOK_EVERY = 12  # polls between looks for a watchdog armed elsewhere (a CLI, another laptop)


class EngineAutostop:
    def __init__(self, settings: Settings, cloud: Cloud, manager: RemoteManager,
                 context: Callable[[Instance], Awaitable[RemoteContext]],
                 command_log: Callable[[Instance], CommandLog], emit: Emit) -> None:
        self.settings, self.cloud, self.manager, self.emit = settings, cloud, manager, emit
        self._context, self._command_log = context, command_log
        self._service: AutostopService | None = None
        self._seen: set[str] = set()  # instances whose watchdog is armed: read on every refresh

    def policy(self, idle: str | None = None, action: str | None = None) -> Policy | None:
        """The profile's autostop with `idle`/`action` on top (None: off). InvalidInput on a bad value."""
        from tui.core.autostop.policy import PolicyError
        from tui.core.autostop.profile import from_settings

        try:
            return from_settings(self.settings, idle, action)
        except PolicyError as exc:
            raise InvalidInput(f"autostop: {exc}", "e.g. --idle 60m --action stop") from None

    @property
    def service(self) -> AutostopService:
        if self._service is None:
            async def connect(inst: Instance) -> Any:
                return await self.manager.connection(await self._context(inst))

            self._service = AutostopService(self.cloud, connect, self._command_log, self.emit)
        return self._service

    async def set(self, inst: Instance, policy: Policy) -> AutostopStatus:
        """Install and (re)start the watchdog on the VM with this policy; for shelve, the VM's own credential."""
        with as_manager_error():
            status = await self.service.arm(inst, policy)
        self._seen.add(inst.id)
        return status

    async def off(self, inst: Instance) -> AutostopStatus:
        with as_manager_error():
            return await self.service.off(inst)

    async def keep(self, inst: Instance) -> AutostopStatus:
        """Reset the idle timer (the watchdog reads `keep` at its next look)."""
        with as_manager_error():
            return await self.service.keep(inst)

    async def status(self, inst: Instance) -> AutostopStatus:
        with as_manager_error():
            status = await self.service.status(inst)
        if status.armed:
            self._seen.add(inst.id)
        return status

    async def refresh(self, inst: Instance, polls: int) -> None:
        """With a refresh (the `polls`-th): the watchdog's state of instances known to have one, and now and then
        of the others."""
        if not self.manager.pool.is_connected(inst.id):
            return
        if inst.id not in self._seen and polls % LOOK_EVERY:
            return
        async def open_one(i: Instance) -> Any:  # the connection the refresh found: never a new login (a VM
            if not self.manager.pool.is_connected(i.id):  # being deleted would otherwise say "connection lost")
                raise AutostopError(f"{i.name}: not connected now")
            return await self.manager.pool.get(i.id)

        try:
            with as_manager_error():
                status = await self.service.status(inst, open_one)
                if status.armed:
                    self._seen.add(inst.id)
                if status.armed and not status.running:  # the VM was started again: so is its watchdog
                    await self.service.restart(inst, open_one)
                    log.info("autostop watchdog of %s started again", inst.name)
        except ManagerError as exc:
            log.info("autostop state of %s not read: %s", inst.name, exc)
