"""Neutron helpers shared by the network modules: the error shape and the fields every record carries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tui.sandbox.router import HTTPError
from tui.sandbox.state import Record, new_id, now_iso

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox


def neutron_error(status: int, kind: str, message: str) -> HTTPError:
    return HTTPError(status, {"NeutronError": {"type": kind, "message": message, "detail": ""}})


def base_record(sb: Sandbox, **fields: Any) -> Record:
    now = now_iso()
    pid = sb.state.data["project_id"]
    rec: Record = {
        "id": new_id(),
        "tenant_id": pid,
        "project_id": pid,
        "description": "",
        "tags": [],
        "created_at": now,
        "updated_at": now,
        "revision_number": 1,
    }
    rec.update(fields)
    return rec
