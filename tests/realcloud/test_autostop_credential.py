"""The autostop shelve credential against real Keystone + keystonemiddleware in front of real Nova (its
`[keystone_authtoken] service_type = compute`, which a deployment needs for access rules): made by the app's cloud
layer with one access rule, `POST <compute path>/servers/<id>/action`; its token passes Nova only for that call
(another server's action and a listing: 401, as `validate_allowed_request` decides); deleted by name with the VM."""
from __future__ import annotations

import uuid
from typing import Any

import requests

from tui.core.autostop import credential


def _names(cloud: Any) -> list[str]:
    conn = cloud.conn
    return [c.name for c in conn.identity.application_credentials(user=conn.current_user_id)]


def test_access_rule_credential_only_reaches_its_servers_action(rc_cloud: Any) -> None:
    server = str(uuid.uuid4())  # the rule is checked before Nova looks the server up: no launch needed
    cred = credential.create(rc_cloud, server)
    try:
        assert cred.rule_path.endswith(f"/servers/{server}/action")
        body = {"auth": {"identity": {"methods": ["application_credential"],
                                      "application_credential": {"id": cred.id, "secret": cred.secret}}}}
        signed = requests.post(cred.auth_url + "/v3/auth/tokens", json=body, timeout=30)
        assert signed.status_code == 201, signed.text
        part = signed.json()["token"]["application_credential"]
        assert part["restricted"] and [r["path"] for r in part["access_rules"]] == [cred.rule_path]
        headers = {"X-Auth-Token": signed.headers["X-Subject-Token"], "OpenStack-API-Version": "compute 2.1"}
        other = requests.post(f"{cred.compute_url}/servers/{uuid.uuid4()}/action", json={"shelve": None},
                              headers=headers, timeout=30)
        assert other.status_code == 401, other.text
        assert requests.get(f"{cred.compute_url}/servers", headers=headers, timeout=30).status_code == 401
        mine = requests.post(f"{cred.compute_url}/servers/{server}/action", json={"shelve": None},
                             headers=headers, timeout=30)
        assert mine.status_code == 404, mine.text  # past the rule: Nova itself answers (no such server)
    finally:
        credential.forget(rc_cloud, server)
    assert credential.name_for(server) not in _names(rc_cloud)
