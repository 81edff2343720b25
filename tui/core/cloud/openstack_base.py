"""What every part of `OpenStackCloud` stands on: the connection, raw reads, finding servers and volumes, waiting.

`OpenStackCloud.__init__` sets up the state (the connection, the cloud's clock `answered`); the polling interval
is `OpenStackCloud`'s too (`_poll_s`: its module's POLL_S, which tests shorten).
"""

from __future__ import annotations

import contextlib
import email.utils
import time
from datetime import datetime
from typing import Any

from tui.core.cloud.base import CloudError, NotFound, Progress
from tui.core.cloud.openstack_convert import to_instance
from tui.core.cloud.openstack_errors import classify, http_error, translate_errors
from tui.core.hints import command
from tui.core.models import Instance

MICROVERSION = "2.79"  # flavor details embedded in servers (2.47), stable since Train
WAIT_S = 900.0  # a slow cloud can take minutes to build a boot-from-volume server


def auth_token(conn: Any) -> str | None:
    """The token the connection's session holds now (None before it has authenticated)."""
    auth_ref = getattr(getattr(conn.session, "auth", None), "auth_ref", None)
    return getattr(auth_ref, "auth_token", None)


class OpenStackBase:
    """The connection and the helpers the reads and the actions share."""

    conn: Any  # an openstack.connection.Connection
    answered: datetime | None  # the cloud's clock: the HTTP Date of its last answer

    def _poll_s(self) -> float:
        """Seconds between two polls of the cloud, read at each poll."""
        raise NotImplementedError

    def get_instance(self, name_or_id: str) -> Instance:
        server_id = self._server_id(name_or_id)
        with translate_errors(f"reading instance '{name_or_id}'"):
            return to_instance(self._get(f"/servers/{server_id}")["server"])

    def _json(self, service: str, path: str) -> dict[str, Any]:
        """GET `path` of a service ("compute" at MICROVERSION, "block_storage"); an HTTP error as a CloudError."""
        proxy = getattr(self.conn, service)
        response = proxy.get(path, microversion=MICROVERSION) if service == "compute" else proxy.get(path)
        if response.status_code >= 400:
            raise classify(http_error(response), f"reading {path.split('?')[0]}")
        with contextlib.suppress(TypeError, ValueError):
            self.answered = email.utils.parsedate_to_datetime(response.headers.get("Date"))
        body: dict[str, Any] = response.json()
        return body

    def _get(self, url: str) -> dict[str, Any]:
        response = self.conn.compute.get(url, microversion=MICROVERSION)
        if response.status_code >= 400:
            from openstack import exceptions

            exceptions.raise_from_response(response)
        body: dict[str, Any] = response.json()
        return body

    def _server_id(self, name_or_id: str) -> str:
        with translate_errors(f"finding instance '{name_or_id}'"):
            server = self.conn.compute.find_server(name_or_id, ignore_missing=True)
            if server is None:
                raise NotFound(f"instance '{name_or_id}' not found", f"see `{command('list')}`")
            return str(server.id)

    def _server(self, name_or_id: str) -> Instance:
        return self.get_instance(name_or_id)

    def _volume(self, name_or_id: str) -> Any:
        with translate_errors(f"finding volume '{name_or_id}'"):
            vol = self.conn.block_storage.find_volume(name_or_id, ignore_missing=True)
            if vol is None:
                raise NotFound(f"volume '{name_or_id}' not found", f"see `{command('volume', 'list')}`")
            return self.conn.block_storage.get_volume(vol.id)

    def _wait_gone(self, server_id: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if self.conn.compute.find_server(server_id, ignore_missing=True) is None:
                return
            time.sleep(self._poll_s())
        raise CloudError(f"instance {server_id} was not deleted in {int(WAIT_S)} s", f"check it in `{command('list')}`")

    def _wait(self, server_id: str, targets: set[str], say: Progress | None, what: str) -> Instance:
        deadline = time.monotonic() + WAIT_S
        last = ""
        while True:
            inst = self.get_instance(server_id)
            if say and inst.status != last:
                say(f"{inst.name}: {inst.status}" + (f" ({inst.task_state})" if inst.task_state else ""))
            last = inst.status
            if inst.status in targets:
                return inst
            if inst.status == "ERROR":
                raise CloudError(f"{inst.name} went to ERROR: {inst.fault or 'no reason given'}",
                                 "delete it and try again, or contact your cloud's support")
            if time.monotonic() > deadline:
                raise CloudError(f"{inst.name} did not get {what} in {int(WAIT_S)} s (still {inst.status})",
                                 "check the cloud's status page; the action may still finish")
            time.sleep(self._poll_s())
