"""The shelve credential against the sandbox's Keystone (over HTTP, as the watchdog uses it): made for one VM and
restricted by an access rule to that server's action call; any other call with it is refused 401 (another server's
action, a listing), as keystonemiddleware refuses it; it is deleted with the VM; a cloud that refuses access-rule
credentials gets one clear line."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests._support import launch, sandbox_services, sandbox_settings
from tui.core.autostop import credential
from tui.core.engine import CoreEngine, open_cloud


@pytest.fixture(scope="module")
def two(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, Any, Any]]:
    base = tmp_path_factory.mktemp("cred")
    settings = sandbox_settings(sandbox)
    services = sandbox_services(settings, base / "data" / "cades-tui", base / "state" / "cades-tui")
    cloud = open_cloud(settings)
    names = [f"cred-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    try:
        a, b = (launch(cloud, n, services.keystore) for n in names)
        yield cloud, services, a, b
    finally:
        for name in names:
            try:
                cloud.delete(name, delete_volumes=True)
            except Exception as exc:
                print(f"cleanup of {name}: {exc}")


def token_of(cred: credential.VMCredential) -> requests.Response:
    body = {"auth": {"identity": {"methods": ["application_credential"],
                                  "application_credential": {"id": cred.id, "secret": cred.secret}}}}
    return requests.post(cred.auth_url + "/v3/auth/tokens", json=body, timeout=10)


def names(cloud: Any) -> list[str]:
    conn = cloud.conn
    return [c.name for c in conn.identity.application_credentials(user=conn.current_user_id)]


async def test_restricted_to_its_server_and_deleted_with_it(two: tuple[Any, Any, Any, Any]) -> None:
    cloud, services, a, b = two
    cred = await asyncio.to_thread(credential.create, cloud, a.id)
    assert cred.rule_path == f"/compute/v2.1/servers/{a.id}/action"  # the endpoint's path + the action
    signed = token_of(cred)
    assert signed.status_code == 201
    part = signed.json()["token"]["application_credential"]
    assert part["restricted"] and [(r["service"], r["method"], r["path"]) for r in part["access_rules"]] == [
        ("compute", "POST", cred.rule_path)]
    headers = {"X-Auth-Token": signed.headers["X-Subject-Token"]}
    other = requests.post(f"{cred.compute_url}/servers/{b.id}/action", json={"os-stop": None}, headers=headers,
                          timeout=10)
    assert other.status_code == 401  # another server's action: refused before Nova sees it
    assert requests.get(f"{cred.compute_url}/servers", headers=headers, timeout=10).status_code == 401
    mine = requests.post(f"{cred.compute_url}/servers/{a.id}/action", json={"shelve": None}, headers=headers,
                         timeout=10)
    assert mine.status_code != 401, mine.text  # passes the rule (202 where the sandbox shelves, else Nova's 400)
    more = requests.post(f"{cred.auth_url}/v3/users/{part['id']}/application_credentials", headers=headers,
                         json={"application_credential": {"name": "x"}}, timeout=10)
    assert more.status_code in (401, 403)  # it cannot make another credential
    assert (await asyncio.to_thread(cloud.get_instance, b.id)).status == "ACTIVE"
    assert credential.name_for(a.id) in await asyncio.to_thread(names, cloud)

    engine = CoreEngine(services.settings, cloud, lambda _e: None, services=services)
    try:
        await engine.delete_instance(a, None)
    finally:
        await engine.aclose()
    assert credential.name_for(a.id) not in await asyncio.to_thread(names, cloud)
    assert token_of(cred).status_code == 401  # the secret on the (gone) VM signs in no more


async def test_refused_with_one_line_where_access_rules_are_not_allowed(two: tuple[Any, Any, Any, Any]) -> None:
    _cloud, services, _a, b = two
    restricted = dataclasses.replace(services.settings, cloud="sandbox-appcred")  # signed in with a restricted one
    other = await asyncio.to_thread(open_cloud, restricted)
    with pytest.raises(credential.AccessRulesRefused) as refused:
        await asyncio.to_thread(credential.create, other, b.id)
    line = str(refused.value)
    assert "\n" not in line and "HTTP 403" in line and "--action stop" in line
