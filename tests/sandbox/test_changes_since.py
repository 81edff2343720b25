"""Nova's `changes-since` in the sandbox, through unmodified openstacksdk; tokens that outlive a restart."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.sandbox.conftest import connect, wait_for
from tui.sandbox import Sandbox


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _changed(conn: Any, since: datetime) -> dict[str, str]:
    body = conn.compute.get(f"/servers/detail?changes-since={_stamp(since)}", microversion="2.79").json()
    return {s["name"]: s["status"] for s in body["servers"]}


def test_changes_since_lists_changed_and_deleted_servers_only(sandbox: Sandbox, conn: Any) -> None:
    ids = sandbox.seed_servers(3)
    names = {s.id: s.name for s in conn.compute.servers()}
    assert set(_changed(conn, datetime.now(UTC) - timedelta(minutes=5))) == set(names.values())
    seeded = int(time.time())
    wait_for(lambda: int(time.time()) > seeded, what="the next whole second")  # Nova's timestamps have whole seconds
    mark = datetime.now(UTC)
    assert _changed(conn, mark) == {}  # nothing changed since: an empty answer however many servers there are

    conn.compute.stop_server(ids[0])
    conn.compute.delete_server(ids[1])
    wait_for(lambda: ids[1] not in sandbox.state.table("servers"), what="the delete to finish")
    wait_for(lambda: sandbox.state.table("servers")[ids[0]]["status"] == "SHUTOFF", what="the stop")
    changed = _changed(conn, mark)
    assert changed == {names[ids[0]]: "SHUTOFF", names[ids[1]]: "DELETED"}
    # without changes-since a deleted server is gone, as in Nova
    assert names[ids[1]] not in {s.name for s in conn.compute.servers()}


def test_changes_since_must_be_a_time(sandbox: Sandbox, conn: Any) -> None:
    response = conn.compute.get("/servers/detail?changes-since=yesterday", microversion="2.79")
    assert response.status_code == 400
    assert "changes-since" in response.json()["badRequest"]["message"]


def test_a_token_outlives_a_restart_and_the_state_holds_no_token(sandbox: Sandbox) -> None:
    """Like Keystone's Fernet tokens: a client's cached token still works after the cloud restarts."""
    first = connect(sandbox)
    token = first.session.get_token()
    assert [s.name for s in first.compute.servers()] == []
    sandbox.stop()
    sandbox.start()
    again = connect(sandbox)
    again.session.auth.set_auth_state(first.session.auth.get_auth_state())
    assert again.session.get_token() == token
    assert again.compute.get("/servers/detail", microversion="2.79").status_code == 200
    assert token not in sandbox.state.path.read_text()
