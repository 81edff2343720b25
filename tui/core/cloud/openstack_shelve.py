"""The shelve actions of `OpenStackCloud`: shelve, shelve offload, unshelve (openstacksdk's `compute.shelve_server`,
`shelve_offload_server`, `unshelve_server`).

Each waits, unless told not to, until the server has settled (no task state left) in the state the action leads to,
saying every status and task state it passes (`shelving`, `shelving_image_uploading`, `shelving_offloading`,
`unshelving`, `spawning`) through `progress`.
"""

from __future__ import annotations

import time

from tui.core.cloud.base import CloudError, Progress
from tui.core.cloud.openstack_base import WAIT_S, OpenStackBase
from tui.core.cloud.openstack_errors import translate_errors
from tui.core.models import SHELVED_STATES, Instance


class OpenStackShelve(OpenStackBase):
    """Shelving: the server's resources freed, its disk kept."""

    def shelve(self, name_or_id: str, wait: bool = True, progress: Progress | None = None) -> Instance:
        server = self._server(name_or_id)
        with translate_errors(f"shelving '{server.name}'"):
            self.conn.compute.shelve_server(server.id)
        return self._settle(server.id, set(SHELVED_STATES), progress, "shelved") if wait \
            else self.get_instance(server.id)

    def shelve_offload(self, name_or_id: str, wait: bool = True, progress: Progress | None = None) -> Instance:
        server = self._server(name_or_id)
        with translate_errors(f"offloading '{server.name}'"):
            self.conn.compute.shelve_offload_server(server.id)
        return self._settle(server.id, {"SHELVED_OFFLOADED"}, progress, "offloaded") if wait \
            else self.get_instance(server.id)

    def unshelve(self, name_or_id: str, wait: bool = True, progress: Progress | None = None) -> Instance:
        server = self._server(name_or_id)
        with translate_errors(f"unshelving '{server.name}'"):
            self.conn.compute.unshelve_server(server.id)
        return self._settle(server.id, {"ACTIVE"}, progress, "unshelved") if wait else self.get_instance(server.id)

    def _settle(self, server_id: str, targets: set[str], say: Progress | None, what: str) -> Instance:
        """Wait until the server is in one of `targets` with no task state; each change said."""
        deadline = time.monotonic() + WAIT_S
        last = ("", "")
        while True:
            inst = self.get_instance(server_id)
            now = (inst.status, inst.task_state)
            if say and now != last:
                say(f"{inst.name}: {inst.status}" + (f" ({inst.task_state})" if inst.task_state else ""))
            last = now
            if inst.status in targets and not inst.task_state:
                return inst
            if inst.status == "ERROR":
                raise CloudError(f"{inst.name} went to ERROR: {inst.fault or 'no reason given'}",
                                 "contact your cloud's support; its disk is kept")
            if time.monotonic() > deadline:
                raise CloudError(f"{inst.name} was not {what} in {int(WAIT_S)} s (still {inst.status})",
                                 "check the cloud's status page; the action may still finish")
            time.sleep(self._poll_s())
