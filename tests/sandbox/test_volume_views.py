"""The sandbox's Cinder answers field by field as real Cinder 29 does (checked against it by tests/realcloud)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.conftest import connect
from tui.sandbox import Sandbox


@pytest.mark.parametrize("mv", ["3.0", "3.70"])
def test_create_answers_without_tenant_attr_which_show_and_list_add(sandbox: Sandbox, mv: str) -> None:
    """Real Cinder's `POST /volumes` answer has no `os-vol-tenant-attr:tenant_id`; show and list have it."""
    conn: Any = connect(sandbox)
    try:
        headers = {"OpenStack-API-Version": f"volume {mv}"}
        created = conn.block_storage.post("/volumes", json={"volume": {"size": 1, "name": "v"}}, headers=headers)
        assert created.status_code == 202
        body = created.json()["volume"]
        assert "os-vol-tenant-attr:tenant_id" not in body
        shown = conn.block_storage.get(f"/volumes/{body['id']}", headers=headers).json()["volume"]
        listed = conn.block_storage.get("/volumes/detail", headers=headers).json()["volumes"]
        assert shown["os-vol-tenant-attr:tenant_id"] == conn.current_project_id
        assert [v["os-vol-tenant-attr:tenant_id"] for v in listed if v["id"] == body["id"]] == [
            conn.current_project_id]
        assert set(shown) - set(body) == {"os-vol-tenant-attr:tenant_id"}
    finally:
        conn.close()
