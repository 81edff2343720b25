"""Polling the cloud cheaply, against the sandbox through openstacksdk: the token/catalog cache (0600, no
password), the first listing read with the cached token before openstacksdk is involved, and polls that ask Nova
only for what changed (and skip the quota and volumes when nothing did)."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._support import running_sandbox
from tui.core.cloud import authcache, quick
from tui.core.cloud.openstack_cloud import OpenStackCloud
from tui.core.config import Settings
from tui.core.engine import CoreEngine
from tui.core.events import Polled
from tui.sandbox import Sandbox


@pytest.fixture
def sb(tmp_path: Path) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path / "sandbox", ssh_hosts=False) as sandbox:
        yield sandbox


def _open(sb: Sandbox) -> OpenStackCloud:
    return OpenStackCloud.from_config("sandbox", sb.clouds_yaml)


class Reads:
    """Records the paths the cloud reads (the real reads happen; this only watches them)."""

    def __init__(self, cloud: OpenStackCloud) -> None:
        self.paths: list[str] = []
        real = cloud._json

        def spy(service: str, path: str) -> dict[str, Any]:
            self.paths.append(path)
            return real(service, path)

        cloud._json = spy  # type: ignore[method-assign]

    def take(self) -> list[str]:
        out, self.paths = self.paths, []
        return out


def test_token_cache_is_private_holds_no_secret_and_is_reused(sb: Sandbox) -> None:
    first = _open(sb)
    first.list_instances()  # records the endpoints too
    path = authcache.cache_path()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = path.read_text()
    for secret in (sb.secrets["password"], sb.secrets["app_cred_secret"]):
        assert secret not in text
    entry = json.loads(text)["clouds"]["sandbox"]
    assert set(entry["endpoints"]) == {"compute", "block_storage"}
    assert "password" not in json.dumps(entry["identity"])
    token = json.loads(entry["auth_state"])["auth_token"]
    second = _open(sb)  # a new process would do the same: the cached token, no keystone round trip
    assert second._cached_token == token
    assert second.conn.session.get_token() == token


def test_a_revoked_cached_token_is_replaced(sb: Sandbox) -> None:
    first = _open(sb)
    first.list_instances()
    old = first._cached_token
    assert old is not None
    first.conn.identity.delete(  # revoke it, as an admin or a logout would
        "/auth/tokens", headers={"X-Subject-Token": old})
    second = _open(sb)
    assert second.list_instances() == []  # keystoneauth re-authenticated after the 401
    assert second._cached_token != old
    entry = json.loads(authcache.cache_path().read_text())["clouds"]["sandbox"]
    assert json.loads(entry["auth_state"])["auth_token"] == second._cached_token


def test_a_changed_profile_misses_the_cache(sb: Sandbox) -> None:
    _open(sb).list_instances()
    assert authcache.load("sandbox", str(sb.clouds_yaml)) is not None
    os.utime(sb.clouds_yaml, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert authcache.load("sandbox", str(sb.clouds_yaml)) is None
    assert authcache.load("other-cloud", str(sb.clouds_yaml)) is None


def test_first_listing_from_the_cache_matches_the_engine(sb: Sandbox) -> None:
    sb.seed_servers(3)
    emitted: list[Any] = []
    assert not quick.first_poll("sandbox", str(sb.clouds_yaml), emitted.append)  # nothing cached yet
    engine = CoreEngine(Settings(cloud="sandbox", clouds_yaml=str(sb.clouds_yaml)), _open(sb), emitted.append)
    polled = engine.poll(True)
    emitted.clear()
    assert quick.first_poll("sandbox", str(sb.clouds_yaml), emitted.append)
    [first] = emitted
    assert isinstance(first, Polled) and first.flavors is None
    assert sorted(first.instances, key=lambda i: i.id) == sorted(polled.instances, key=lambda i: i.id)
    assert first.quota == polled.quota and first.volumes == polled.volumes

    # as the app starts: the reads go out before Textual loads, and the listing is converted later
    prefetch = quick.Prefetch("sandbox", str(sb.clouds_yaml))
    for thread in prefetch._threads:
        thread.join(10)
    assert set(prefetch.bodies) == set(quick.FIRST_READS)
    emitted.clear()
    assert quick.first_poll("sandbox", str(sb.clouds_yaml), emitted.append, prefetch)
    [early] = emitted
    assert early == first


def test_polls_read_only_what_changed(sb: Sandbox) -> None:
    ids = sb.seed_servers(3)
    cloud = _open(sb)
    engine = CoreEngine(Settings(cloud="sandbox", clouds_yaml=str(sb.clouds_yaml)), cloud, lambda _e: None)
    reads = Reads(cloud)
    first = engine.poll(True)
    assert len(first.instances) == 3
    assert any(p.startswith("/servers/detail?limit=") for p in reads.take())

    quiet = engine.poll(False)  # nothing changed: one small read of the changes, no quota or volumes
    [only] = reads.take()
    assert only.startswith("/servers/detail?changes-since=")
    assert quiet.instances == first.instances and quiet.quota == first.quota and quiet.volumes == first.volumes

    cloud.conn.compute.delete_server(ids[0])
    deadline = time.monotonic() + 10
    while ids[0] in sb.state.table("servers") and time.monotonic() < deadline:
        time.sleep(0.05)
    after = engine.poll(False)
    assert {i.id for i in after.instances} == set(ids[1:])  # the deleted one came back as DELETED and was dropped
    changed = reads.take()
    assert changed[0].startswith("/servers/detail?changes-since=")
    assert "/limits" in changed  # a server changed: the quota is read again

    engine.poll(False, full=True)  # F5, or after an action: every server again
    assert reads.take()[0].startswith("/servers/detail?limit=")
