"""Sign-in types against real Keystone through the app's connect path (`open_cloud` → `OpenStackCloud.from_config`),
and the CLI's `list` / `quota --json` as a user runs them, against the real services."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.realcloud import seed
from tests.realcloud.keystone import KeystoneAccess
from tests.realcloud.services import RealCloud
from tui.core.cloud.base import AuthError, CloudError
from tui.core.cloud.clouds_yaml import open_cloud


def _works(cloud: Any) -> None:
    """The connection answers as the demo project: its flavors, its network."""
    assert "m1.small" in {f.name for f in cloud.list_flavors()}
    assert seed.NETWORK in {n.name for n in cloud.list_networks()}


def test_password(keystone: KeystoneAccess) -> None:
    _works(open_cloud("pw", str(keystone.clouds_yaml("pw", keystone.password_auth()))))


def test_password_wrong_is_an_auth_error(keystone: KeystoneAccess) -> None:
    auth = {**keystone.password_auth(), "password": "not-the-password"}
    with pytest.raises(AuthError):
        open_cloud("bad", str(keystone.clouds_yaml("bad", auth)))


def test_v3applicationcredential(keystone: KeystoneAccess) -> None:
    cred_id, secret = keystone.app_credential()
    path = keystone.clouds_yaml("ac", {"auth_url": keystone.url, "application_credential_id": cred_id,
                                       "application_credential_secret": secret}, "v3applicationcredential")
    cloud = open_cloud("ac", str(path))
    _works(cloud)
    assert cloud.conn.current_project_id == keystone.demo.project_id  # the credential's own project


def test_v3applicationcredential_by_name(keystone: KeystoneAccess) -> None:
    user = keystone.create_user()
    conn = keystone.connect(user)
    cred = conn.identity.create_application_credential(user=user.id, name="by-name")
    path = keystone.clouds_yaml("acn", {"auth_url": keystone.url, "application_credential_name": "by-name",
                                        "application_credential_secret": cred.secret, "username": user.name,
                                        "user_domain_name": "Default"}, "v3applicationcredential")
    _works(open_cloud("acn", str(path)))


def test_token(keystone: KeystoneAccess) -> None:
    token = keystone.issue_token()
    path = keystone.clouds_yaml("tok", {"auth_url": keystone.url, "token": token, "project_name": "demo",
                                        "project_domain_name": "Default"}, "token")
    _works(open_cloud("tok", str(path)))


def test_revoked_token_is_refused(keystone: KeystoneAccess) -> None:
    user = keystone.create_user()
    token = keystone.issue_token(user)
    keystone.connect().identity.delete("/auth/tokens", headers={"X-Subject-Token": token})
    path = keystone.clouds_yaml("rev", {"auth_url": keystone.url, "token": token, "project_name": "demo",
                                        "project_domain_name": "Default"}, "token")
    with pytest.raises(CloudError):
        open_cloud("rev", str(path))


def test_totp_helper_signs_in_on_keystone(keystone: KeystoneAccess) -> None:
    """The helper's TOTP user and passcode are accepted by Keystone's totp method (for the v3totp auth tests)."""
    import requests

    user, secret = keystone.totp_user()
    body = {"auth": {"identity": {"methods": ["totp"], "totp": {"user": {
        "id": user.id, "passcode": keystone.totp(secret)}}}}}
    answer = requests.post(f"{keystone.url}/auth/tokens", json=body, timeout=30)
    assert answer.status_code == 201, answer.text
    assert answer.headers["X-Subject-Token"]


def test_v3totp_with_passcode_in_clouds_yaml(keystone: KeystoneAccess) -> None:
    user, secret = keystone.totp_user()
    path = keystone.clouds_yaml("totp", {"auth_url": keystone.url, "username": user.name,
                                         "user_domain_name": "Default", "passcode": keystone.totp(secret),
                                         "project_name": "demo", "project_domain_name": "Default"}, "v3totp")
    _works(open_cloud("totp", str(path)))


def test_v3totp_wrong_passcode_is_an_auth_error(keystone: KeystoneAccess) -> None:
    user, secret = keystone.totp_user()
    wrong = f"{(int(keystone.totp(secret)) + 1) % 1_000_000:06d}"
    path = keystone.clouds_yaml("totp-bad", {"auth_url": keystone.url, "username": user.name,
                                             "user_domain_name": "Default", "passcode": wrong,
                                             "project_name": "demo", "project_domain_name": "Default"}, "v3totp")
    with pytest.raises(AuthError):
        open_cloud("totp-bad", str(path))


def test_v3multifactor_password_and_totp(keystone: KeystoneAccess) -> None:
    user, secret = keystone.totp_user()
    path = keystone.clouds_yaml("mfa", {"auth_url": keystone.url, "auth_methods": ["v3password", "v3totp"],
                                        "username": user.name, "user_domain_name": "Default",
                                        "password": user.password, "passcode": keystone.totp(secret),
                                        "project_name": "demo", "project_domain_name": "Default"}, "v3multifactor")
    _works(open_cloud("mfa", str(path)))


def _cli(realcloud: RealCloud, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(realcloud.clouds_yaml()), "OS_CLOUD": "realcloud",
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_STATE_HOME": str(tmp_path / "state")}
    return subprocess.run([sys.executable, "-m", "tui", *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def test_cli_list_and_quota_json(realcloud: RealCloud, tmp_path: Path) -> None:
    listed = _cli(realcloud, tmp_path, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert isinstance(json.loads(listed.stdout), list)
    quota = _cli(realcloud, tmp_path, "quota", "--json")
    assert quota.returncode == 0, quota.stderr
    got = json.loads(quota.stdout)
    assert (got["ram_mb_limit"], got["cores_limit"]) == (8192, 16)
    flavors = _cli(realcloud, tmp_path, "flavors", "--json")
    assert flavors.returncode == 0, flavors.stderr
    assert {"m1.small", "c1.small"} <= {f["name"] for f in json.loads(flavors.stdout)}
    assert quota.stderr == "" and listed.stderr == ""


def test_admin_token_against_real_nova_lists_through_the_cli(keystone: KeystoneAccess, tmp_path: Path) -> None:
    """The issue's case: `auth_type: admin_token` (a fixed token sent to fixed endpoints, each service named by an
    endpoint override) against real Nova. Before the fix every command failed with `connecting to cloud 'nova':
    NotImplementedError` (the token cache asked the plugin for an auth state it does not have). Run twice: nothing is
    cached for it, and the second start works as the first."""
    ep = keystone.endpoints
    path = keystone.clouds_yaml("nova", {"token": keystone.issue_token(), "endpoint": ep["compute"]}, "admin_token",
                                compute_endpoint_override=ep["compute"],
                                block_storage_endpoint_override=ep["block-storage"],
                                image_endpoint_override=ep["image"], network_endpoint_override=ep["network"])
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(path), "OS_CLOUD": "nova",
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_STATE_HOME": str(tmp_path / "state")}
    for _ in range(2):
        listed = subprocess.run([sys.executable, "-m", "tui", "list", "--json"], capture_output=True, text=True,
                                env=env, timeout=300, check=False)
        assert listed.returncode == 0, listed.stderr
        assert isinstance(json.loads(listed.stdout), list) and listed.stderr == ""
    cache = tmp_path / "state" / "cades-tui" / "auth-cache.json"
    assert not cache.exists() or "nova" not in json.loads(cache.read_text()).get("clouds", {})
