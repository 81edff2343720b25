"""Every auth type a research cloud uses, through the CLI's real path (`cades-tui --cloud X list --json` with a
clouds.yaml of that type) against the sandbox's Keystone, Nova and Cinder over HTTP; each asserts the listing."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.auth.fake_oidc import FakeOIDCProvider
from tests.auth.signin_support import SERVER, clouds_yaml, keystone_token, listed, overrides
from tui.core import paths
from tui.core.cloud import authcache, quick
from tui.sandbox.credentials import totp
from tui.sandbox.federation import OIDCTrust


def passcode(sb: Any) -> str:
    return totp(sb.secrets["totp_secret"])


def cache_entry(cloud: str) -> Any:
    path = authcache.cache_path()
    return json.loads(path.read_text())["clouds"].get(cloud) if path.exists() else None


@pytest.mark.parametrize("cloud", ["sandbox", "sandbox-appcred"])
def test_password_and_application_credential(sb: Any, cli: Any, cloud: str) -> None:
    assert listed(cli(sb.clouds_yaml, cloud, "list", "--json")) == [SERVER]
    assert cache_entry(cloud)["auth_state"]  # keystone's token, cached for the next start


def test_token_is_traded_for_a_project_token(sb: Any, cli: Any, tmp_path: Path) -> None:
    """`auth_type: v3token`: an unscoped token (as `openstack token issue` gives without a project) is traded at
    keystone (method `token`) for a project-scoped one."""
    path = clouds_yaml(sb, tmp_path / "clouds.yaml", tok={
        "auth_type": "v3token", "region_name": "RegionOne",
        "auth": {"auth_url": sb.auth_url, "token": keystone_token(sb, scoped=False), "project_name": "cades-demo",
                 "project_domain_name": "Default"}})
    assert listed(cli(path, "tok", "list", "--json")) == [SERVER]


def test_admin_token_connects_and_is_never_cached(sb: Any, cli: Any, tmp_path: Path) -> None:
    """`auth_type: admin_token`: a fixed token sent to fixed endpoints. Before the fix every command failed with
    `connecting to cloud 'nova': NotImplementedError` (the cache asked the plugin for its auth state)."""
    path = clouds_yaml(sb, tmp_path / "clouds.yaml", nova={
        "auth_type": "admin_token", "region_name": "RegionOne", **overrides(sb),
        "auth": {"token": keystone_token(sb), "endpoint": f"{sb.url}/compute/v2.1"}})
    for _ in range(2):  # and again: nothing cached, nothing that breaks the second start
        assert listed(cli(path, "nova", "list", "--json")) == [SERVER]
    assert cache_entry("nova") is None


def test_noauth_reaches_the_services_through_endpoint_overrides(sb: Any, cli: Any, tmp_path: Path) -> None:
    """`auth_type: none` against services deployed without keystone (noauth2): no token is asked for."""
    path = clouds_yaml(sb, tmp_path / "clouds.yaml", bare={"auth_type": "none", **overrides(sb)})
    code, _, err = cli(path, "bare", "list", "--json")
    assert code == 1 and "(401)" in err  # the services check tokens: none is refused
    sb.auth_modes.noauth = True
    assert listed(cli(path, "bare", "list", "--json")) == [SERVER]
    assert cache_entry("bare") is None


def test_totp_passcode_from_the_environment_then_the_cached_token(sb: Any, cli: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OS_PASSCODE", passcode(sb))
    assert listed(cli(sb.clouds_yaml, "sandbox-totp", "list", "--json")) == [SERVER]
    monkeypatch.delenv("OS_PASSCODE")
    # the next command within the token's life asks for nothing: the cached token serves
    assert listed(cli(sb.clouds_yaml, "sandbox-totp", "list", "--json")) == [SERVER]
    text = authcache.cache_path().read_text()
    assert passcode(sb) not in text and sb.secrets["password"] not in text
    assert oct(authcache.cache_path().stat().st_mode & 0o777) == "0o600"
    assert authcache.cache_path().parent == paths.state_dir()


def test_a_wrong_passcode_is_said_as_such(sb: Any, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = f"{(int(passcode(sb)) + 1) % 1_000_000:06d}"
    monkeypatch.setenv("OS_PASSCODE", wrong)
    code, _, err = cli(sb.clouds_yaml, "sandbox-totp", "list", "--json")
    assert code == 1 and "TOTP passcode" in err and "(401)" in err and len(err.strip().splitlines()) == 1


def _cades(env: dict[str, str], *args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tui", *args], env=env, **kwargs)


def _env(sb: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OS_PASSCODE"}
    return env | {"OS_CLIENT_CONFIG_FILE": str(sb.clouds_yaml)}


def test_totp_without_a_terminal_is_one_line_naming_the_variable(sb: Any) -> None:
    proc = _cades(_env(sb), "--cloud", "sandbox-totp", "list", "--json", stdin=subprocess.DEVNULL,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2 and out == b""
    assert len(lines) == 1 and "needs a TOTP passcode" in lines[0] and "OS_PASSCODE" in lines[0], lines


EOF = b""  # `_read_until(fd, EOF)`: everything until the terminal closes


def _read_until(fd: int, needle: bytes, timeout: float = 60.0) -> bytes:
    """What the terminal shows until `needle` (or its end, for EOF); fails after `timeout` seconds."""
    seen = b""
    deadline = time.monotonic() + timeout
    while needle == EOF or needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} never came; got {seen!r}"
        if select.select([fd], [], [], left)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_totp_is_asked_on_the_terminal(sb: Any) -> None:
    """On a terminal the CLI asks for the passcode (not echoed), then lists."""
    main_fd, tty_fd = pty.openpty()
    proc = _cades(_env(sb), "--cloud", "sandbox-totp", "list", "--json", stdin=tty_fd, stdout=subprocess.PIPE,
                  stderr=tty_fd, start_new_session=True)
    os.close(tty_fd)
    try:
        assert b"TOTP passcode for cloud 'sandbox-totp'" in _read_until(main_fd, b"authenticator app): ")
        code = passcode(sb)
        os.write(main_fd, code.encode() + b"\n")
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert [i["name"] for i in json.loads(out)] == [SERVER]
        assert code.encode() not in _read_until(main_fd, EOF)  # never echoed (the rest, up to the end)
    finally:
        proc.kill()
        proc.wait()
        os.close(main_fd)


def test_multifactor_needs_password_and_passcode(sb: Any, cli: Any, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    entry = _sandbox_cloud(sb, "sandbox-mfa")
    assert entry["auth_type"] == "v3multifactor" and "passcode" not in entry["auth"]
    path = clouds_yaml(sb, tmp_path / "clouds.yaml", alone={  # the same user with its password alone
        "auth_type": "v3password", "region_name": "RegionOne", "auth": entry["auth"]})
    code, _, err = cli(path, "alone", "list", "--json")
    assert code == 1 and "wants more than this sign-in (401): password+totp" in err  # its rule wants both
    assert "v3multifactor" in err
    monkeypatch.setenv("OS_PASSCODE", passcode(sb))
    assert listed(cli(path, "sandbox-mfa", "list", "--json")) == [SERVER]


def test_multifactor_methods_written_inside_auth(sb: Any, cli: Any, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """keystoneauth's documentation puts `auth_methods` under `auth:` as a comma-separated string; openstacksdk
    reads it beside `auth:` only (and iterated the string letter by letter)."""
    entry = _sandbox_cloud(sb, "sandbox-mfa")
    entry["auth"]["auth_methods"] = ",".join(entry.pop("auth_methods"))
    path = clouds_yaml(sb, tmp_path / "clouds.yaml", inside=entry)
    monkeypatch.setenv("OS_PASSCODE", passcode(sb))
    assert listed(cli(path, "inside", "list", "--json")) == [SERVER]


def _sandbox_cloud(sb: Any, name: str) -> dict[str, Any]:
    import yaml

    entry: dict[str, Any] = yaml.safe_load(sb.clouds_yaml.read_text())["clouds"][name]
    return entry


@pytest.fixture
def idp(sb: Any) -> Any:
    """A fake OpenID Connect provider (named as one: the real one is a university's SSO) trusted by the sandbox's
    keystone as identity provider `fake-idp`, protocol `openid`."""
    provider = FakeOIDCProvider(users={"alice": "alice-pw"},
                                clients={"cades-cli": "cli-secret", "keystone": "keystone-secret"}).start()
    sb.auth_modes.oidc = OIDCTrust("fake-idp", "openid", f"{provider.url}/introspect", "keystone", "keystone-secret")
    try:
        yield provider
    finally:
        provider.stop()


def _oidc_entry(sb: Any, auth_type: str, **auth: str) -> dict[str, Any]:
    return {"auth_type": auth_type, "region_name": "RegionOne", "auth": {
        "auth_url": f"{sb.auth_url}/v3", "identity_provider": "fake-idp", "protocol": "openid",
        "project_name": "cades-demo", "project_domain_name": "Default", **auth}}


def test_oidc_password(sb: Any, cli: Any, tmp_path: Path, idp: Any) -> None:
    path = clouds_yaml(sb, tmp_path / "clouds.yaml", sso=_oidc_entry(
        sb, "v3oidcpassword", client_id="cades-cli", client_secret="cli-secret",
        discovery_endpoint=f"{idp.url}/.well-known/openid-configuration", username="alice", password="alice-pw"))
    assert listed(cli(path, "sso", "list", "--json")) == [SERVER]
    assert "POST /token" in idp.requests and "POST /introspect" in idp.requests
    token_user = json.loads(cache_entry("sso")["auth_state"])["body"]["token"]["user"]
    assert token_user["name"] == "alice" and "OS-FEDERATION" in token_user  # a federated user, project-scoped
    asked = len(idp.requests)
    assert listed(cli(path, "sso", "list", "--json")) == [SERVER]
    assert len(idp.requests) == asked  # the next start: the cached keystone token, no trip to the provider


def test_oidc_access_token(sb: Any, cli: Any, tmp_path: Path, idp: Any) -> None:
    path = clouds_yaml(sb, tmp_path / "clouds.yaml",
                       sso=_oidc_entry(sb, "v3oidcaccesstoken", access_token=idp.issue("alice")),
                       stale=_oidc_entry(sb, "v3oidcaccesstoken", access_token="not-a-token-of-the-idp"))
    assert listed(cli(path, "sso", "list", "--json")) == [SERVER]
    code, _, err = cli(path, "stale", "list", "--json")
    assert code == 1 and "(401)" in err


# -- the token cache never makes connecting fail -------------------------------------------------------------


def _app_log() -> str:
    path = paths.state_dir() / "cades-tui.log"
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize("damage", ["not json", "clouds not a mapping", "entry without a token", "readable by others"])
def test_a_damaged_cache_file_is_skipped_logged_and_replaced(sb: Any, cli: Any, damage: str) -> None:
    assert listed(cli(sb.clouds_yaml, "sandbox", "list", "--json")) == [SERVER]  # a cache entry exists
    path = authcache.cache_path()
    data = json.loads(path.read_text())
    if damage == "not json":
        path.write_text("{ this is not json")
    elif damage == "clouds not a mapping":
        path.write_text(json.dumps({"version": authcache.VERSION, "clouds": ["sandbox"]}))
    elif damage == "entry without a token":
        data["clouds"]["sandbox"]["auth_state"] = json.dumps({"auth_token": "", "body": {}})
        path.write_text(json.dumps(data))
    else:
        path.chmod(0o644)
    assert listed(cli(sb.clouds_yaml, "sandbox", "list", "--json")) == [SERVER]
    assert _app_log().count("token cache skipped") == 1, _app_log()
    fresh = json.loads(path.read_text())  # written anew, private
    assert fresh["clouds"]["sandbox"]["auth_state"] and oct(path.stat().st_mode & 0o777) == "0o600"


def test_an_unwritable_cache_is_skipped_and_said_once(sb: Any, cli: Any) -> None:
    path = authcache.cache_path()
    path.mkdir(parents=True)  # a folder where the file should be: it can be neither read nor written
    for _ in range(2):
        assert listed(cli(sb.clouds_yaml, "sandbox", "list", "--json")) == [SERVER]
    log = _app_log()
    assert log.count("token cache skipped while reading") == 1 and log.count("token cache skipped while writing") == 1
    assert path.is_dir()


def test_a_cached_token_the_plugin_cannot_take_is_skipped(sb: Any, cli: Any) -> None:
    """An entry that reads well but whose auth state keystoneauth refuses: signed in without it."""
    assert listed(cli(sb.clouds_yaml, "sandbox", "list", "--json")) == [SERVER]
    path = authcache.cache_path()
    data = json.loads(path.read_text())
    data["clouds"]["sandbox"]["auth_state"] = json.dumps({"auth_token": "gAAAAAx", "body": "not a token body"})
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    assert listed(cli(sb.clouds_yaml, "sandbox", "list", "--json")) == [SERVER]
    assert "token cache skipped while applying" in _app_log()


# -- the app's first listing (standard library, cached token) --------------------------------------------------


def test_the_first_listing_serves_a_cached_totp_token_and_leaves_admin_token_to_openstacksdk(
        sb: Any, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = clouds_yaml(sb, tmp_path / "clouds.yaml", nova={
        "auth_type": "admin_token", "region_name": "RegionOne", **overrides(sb),
        "auth": {"token": keystone_token(sb), "endpoint": f"{sb.url}/compute/v2.1"}})
    monkeypatch.setenv("OS_PASSCODE", passcode(sb))
    for cloud in ("sandbox-totp", "nova"):
        assert listed(cli(path, cloud, "list", "--json")) == [SERVER]
    monkeypatch.delenv("OS_PASSCODE")
    polled = quick.Prefetch("sandbox-totp", str(path)).poll()  # no passcode asked: the cached token serves
    assert polled is not None and [i.name for i in polled.instances] == [SERVER]
    prefetch = quick.Prefetch("nova", str(path))  # nothing cached: the engine's connection lists
    assert not prefetch.started and prefetch.poll() is None


def test_the_first_listing_steps_aside_from_a_damaged_entry(sb: Any, cli: Any, tmp_path: Path) -> None:
    assert listed(cli(sb.clouds_yaml, "sandbox", "list", "--json")) == [SERVER]
    path = authcache.cache_path()
    data = json.loads(path.read_text())
    data["clouds"]["sandbox"]["verify"] = str(tmp_path / "gone-ca.pem")  # a CA bundle since deleted
    path.write_text(json.dumps(data))
    prefetch = quick.Prefetch("sandbox", str(sb.clouds_yaml))  # as the app's start does, before Textual loads
    assert not prefetch.started
    assert quick.first_poll("sandbox", str(sb.clouds_yaml), lambda _: None, prefetch) is False
    assert "token cache skipped while applying" in _app_log()
    assert listed(cli(sb.clouds_yaml, "sandbox", "list", "--json")) == [SERVER]


def test_a_password_left_out_of_clouds_yaml_is_asked_for(sb: Any, cli: Any, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Horizon's downloaded clouds.yaml has no password: without a terminal the one line names OS_PASSWORD, which
    then answers (as it does for `openstack`)."""
    entry = _sandbox_cloud(sb, "sandbox")
    del entry["auth"]["password"]
    path = clouds_yaml(sb, tmp_path / "clouds.yaml", horizon=entry)
    monkeypatch.delenv("OS_PASSWORD", raising=False)
    code, out, err = cli(path, "horizon", "list", "--json")
    assert code == 2 and out == "" and "needs a password" in err and "OS_PASSWORD" in err
    assert len(err.strip().splitlines()) == 1
    monkeypatch.setenv("OS_PASSWORD", sb.secrets["password"])
    assert listed(cli(path, "horizon", "list", "--json")) == [SERVER]
    assert sb.secrets["password"] not in authcache.cache_path().read_text()


def test_a_new_sign_in_asks_for_a_new_passcode_but_not_for_the_password_again(sb: Any, tmp_path: Path) -> None:
    """A long-running app outlives its token: keystoneauth signs in again, and a passcode serves one sign-in."""
    from tui.core.cloud.openstack_cloud import OpenStackCloud

    entry = _sandbox_cloud(sb, "sandbox-mfa")
    del entry["auth"]["password"]
    path = clouds_yaml(sb, tmp_path / "clouds.yaml", both=entry)
    asked: list[str] = []

    def ask(wanted: Any) -> str:
        asked.append(wanted.kind)
        return passcode(sb) if wanted.kind == "passcode" else sb.secrets["mfa_password"]

    cloud = OpenStackCloud.from_config("both", path, ask=ask)
    assert [i.name for i in cloud.list_instances()] == [SERVER]
    assert sorted(asked) == ["passcode", "password"]
    cloud.conn.session.auth.invalidate()  # as when the token expires
    assert [i.name for i in cloud.list_instances()] == [SERVER]
    assert sorted(asked) == ["passcode", "passcode", "password"]
