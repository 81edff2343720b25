"""The sandbox's Keystone signs in the way real Keystone does, method by method, spoken to over HTTP: TOTP (RFC 6238),
password + TOTP for a user with multi-factor rules, a token traded for another (rescoping), OIDC federation; and its
services in noauth mode."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests._support import running_sandbox
from tui.sandbox import identity
from tui.sandbox.credentials import totp
from tui.sandbox.federation import OIDCTrust


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running_sandbox(tmp_path_factory.mktemp("identity"), ssh_hosts=False) as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def _modes_back(sb: Any) -> Any:
    yield
    sb.auth_modes.noauth, sb.auth_modes.oidc = False, None


def call(sb: Any, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
         ) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{sb.url}{path}", data, {"Content-Type": "application/json", **(headers or {})},
                                     method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # (the sandbox on 127.0.0.1)
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, dict(exc.headers), json.loads(raw) if raw else None


def user_ref(name: str = identity.USER) -> dict[str, Any]:
    return {"name": name, "domain": {"name": "Default"}}


PROJECT = {"project": {"name": identity.PROJECT, "domain": {"name": "Default"}}}


def sign_in(sb: Any, identity_: dict[str, Any], scope: Any = PROJECT) -> tuple[int, dict[str, str], Any]:
    auth: dict[str, Any] = {"identity": identity_}
    if scope:
        auth["scope"] = scope
    return call(sb, "POST", "/identity/v3/auth/tokens", {"auth": auth})


def test_totp_matches_the_rfc_6238_vectors() -> None:
    secret = base64.b32encode(b"12345678901234567890").decode()  # RFC 6238 appendix B, SHA-1
    assert totp(secret, 59, digits=8) == "94287082"
    assert totp(secret, 1111111109, digits=8) == "07081804"
    assert totp(secret, 2000000000, digits=8) == "69279037"
    assert totp(secret, 59) == "287082"  # the 6 digits keystone and authenticator apps use


def test_a_passcode_is_good_for_this_window_and_the_one_before() -> None:
    secret, now = base64.b32encode(b"0123456789abcdefghij").decode(), 1_800_000_015.0
    assert identity.passcode_ok(secret, totp(secret, now), now)
    assert identity.passcode_ok(secret, totp(secret, now - 30), now)
    assert not identity.passcode_ok(secret, totp(secret, now - 60), now)
    assert not identity.passcode_ok(secret, totp(secret, now + 30), now)
    assert not identity.passcode_ok(secret, "", now)


def test_totp_signs_in_with_the_current_passcode_only(sb: Any) -> None:
    good = {"methods": ["totp"], "totp": {"user": user_ref() | {"passcode": totp(sb.secrets["totp_secret"])}}}
    status, _, body = sign_in(sb, good)
    assert status == 201 and body["token"]["methods"] == ["totp"] and body["token"]["project"]
    bad = {"methods": ["totp"], "totp": {"user": user_ref() | {"passcode": "12345"}}}
    assert sign_in(sb, bad)[0] == 401


def test_multi_factor_rules_want_password_and_passcode(sb: Any) -> None:
    password = {"user": user_ref(identity.MFA_USER) | {"password": sb.secrets["mfa_password"]}}
    status, headers, body = sign_in(sb, {"methods": ["password"], "password": password})
    assert status == 401 and headers.get("Openstack-Auth-Receipt")
    assert body["required_auth_methods"] == [["password", "totp"]] and body["receipt"]["methods"] == ["password"]
    both = {"methods": ["password", "totp"], "password": password,
            "totp": {"user": user_ref(identity.MFA_USER) | {"passcode": totp(sb.secrets["totp_secret"])}}}
    status, _, body = sign_in(sb, both)
    assert status == 201 and body["token"]["user"]["name"] == identity.MFA_USER
    # two methods must name one user
    mixed = both | {"totp": {"user": user_ref() | {"passcode": totp(sb.secrets["totp_secret"])}}}
    assert sign_in(sb, mixed)[0] == 401


def test_a_token_is_traded_for_a_scoped_one_that_ends_when_it_does(sb: Any) -> None:
    password = {"methods": ["password"], "password": {"user": user_ref() | {"password": sb.secrets["password"]}}}
    status, headers, unscoped = sign_in(sb, password, scope=None)
    assert status == 201 and "project" not in unscoped["token"]
    token = headers["X-Subject-Token"]
    assert call(sb, "GET", "/compute/v2.1/servers", headers={"X-Auth-Token": token})[0] == 401  # unscoped
    status, headers, scoped = sign_in(sb, {"methods": ["token"], "token": {"id": token}})
    assert status == 201 and scoped["token"]["project"]["name"] == identity.PROJECT
    assert scoped["token"]["expires_at"] == unscoped["token"]["expires_at"]
    assert scoped["token"]["methods"] == ["password", "token"]
    assert call(sb, "GET", "/compute/v2.1/servers", headers={"X-Auth-Token": headers["X-Subject-Token"]})[0] == 200
    assert sign_in(sb, {"methods": ["token"], "token": {"id": "gAAAAAnot-a-token"}})[0] == 404


def test_services_in_noauth_mode_take_any_request(sb: Any) -> None:
    assert call(sb, "GET", "/compute/v2.1/servers", headers={"X-Auth-Token": "notused"})[0] == 401
    sb.auth_modes.noauth = True
    assert call(sb, "GET", "/compute/v2.1/servers", headers={"X-Auth-Token": "notused"})[0] == 200
    assert call(sb, "GET", "/identity/v3/auth/tokens", headers={"X-Subject-Token": "x"})[0] == 401  # keystone not


def test_federation_trades_a_trusted_providers_access_token(sb: Any) -> None:
    from tests.auth.fake_oidc import FakeOIDCProvider

    url = "/identity/v3/OS-FEDERATION/identity_providers/fake-idp/protocols/openid/auth"
    assert call(sb, "POST", url, headers={"Authorization": "Bearer x"})[0] == 404  # no provider trusted
    idp = FakeOIDCProvider(users={"bob": "pw"}, clients={"keystone": "ks"}).start()
    try:
        sb.auth_modes.oidc = OIDCTrust("fake-idp", "openid", f"{idp.url}/introspect", "keystone", "ks")
        assert call(sb, "POST", url, headers={"Authorization": "Bearer not-issued"})[0] == 401
        assert call(sb, "POST", url)[0] == 401
        status, headers, body = call(sb, "POST", url, headers={"Authorization": f"Bearer {idp.issue('bob')}"})
        assert status == 201 and body["token"]["user"]["name"] == "bob" and "project" not in body["token"]
        assert body["token"]["user"]["OS-FEDERATION"]["identity_provider"]["id"] == "fake-idp"
        status, _, scoped = sign_in(sb, {"methods": ["token"], "token": {"id": headers["X-Subject-Token"]}})
        assert status == 201 and scoped["token"]["user"]["name"] == "bob" and scoped["token"]["catalog"]
        sb.auth_modes.oidc = OIDCTrust("fake-idp", "openid", f"{idp.url}/introspect", "keystone", "wrong")
        assert call(sb, "POST", url, headers={"Authorization": f"Bearer {idp.issue('bob')}"})[0] == 401
    finally:
        idp.stop()
