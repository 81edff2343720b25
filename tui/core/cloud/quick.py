"""The app's first listing, before openstacksdk is even imported: servers, limits and volumes read with the
standard library, the cached token and the endpoints of the last run (`tui.core.cloud.authcache`).

openstacksdk's import costs 0.3-0.5 s here, more than the whole listing; this gets the instances on screen about
when the first frame is. It serves only when the cache does (same profile, token good for 10 more minutes, no HTTP
proxy, TLS verified); anything unexpected — an expired or revoked token, a moved endpoint, TLS trouble — and it
steps aside silently: the engine's first poll, a moment later, is the authority and replaces what this showed.
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tui.core.cloud import authcache

if TYPE_CHECKING:
    from tui.core.events import Emit, Polled

log = logging.getLogger(__name__)

TIMEOUT_S = 5.0
NOVA_MICROVERSION = "2.79"  # as OpenStackCloud reads servers


class CachedTransport:
    """GET on the cached endpoints with the cached token; one connection per request (they run in parallel)."""

    def __init__(self, entry: dict[str, Any]) -> None:
        self.token = str(json.loads(entry["auth_state"])["auth_token"])
        self.endpoints: dict[str, str] = dict(entry["endpoints"])
        self.context = _tls(entry.get("verify", True), entry.get("cert"))

    def get(self, service: str, path: str) -> dict[str, Any]:
        base = urlsplit(self.endpoints[service])
        conn: http.client.HTTPConnection
        if base.scheme == "https":
            conn = http.client.HTTPSConnection(base.netloc, timeout=TIMEOUT_S, context=self.context)
        else:
            conn = http.client.HTTPConnection(base.netloc, timeout=TIMEOUT_S)
        headers = {"X-Auth-Token": self.token, "Accept": "application/json", "User-Agent": "cades-tui"}
        if service == "compute":
            headers |= {"OpenStack-API-Version": f"compute {NOVA_MICROVERSION}",
                        "X-OpenStack-Nova-API-Version": NOVA_MICROVERSION}
        try:
            conn.request("GET", base.path.rstrip("/") + path, headers=headers)
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status >= 400:
            from tui.core.cloud.base import CloudError

            raise CloudError(f"GET {path.split('?')[0]}: HTTP {response.status}", status=response.status)
        data: dict[str, Any] = json.loads(body)
        return data


def _tls(verify: Any, cert: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
    if isinstance(cert, str):
        context.load_cert_chain(cert)
    elif isinstance(cert, list) and len(cert) == 2:
        context.load_cert_chain(cert[0], cert[1])
    return context


PAGE = 1000  # as tui.core.cloud.rest.PAGE (not imported here: this module loads before the first frame)
FIRST_READS = {  # what a poll reads, each one page, as (service, path)
    "servers": ("compute", f"/servers/detail?limit={PAGE}"),
    "compute_limits": ("compute", "/limits"),
    "volume_limits": ("block_storage", "/limits"),
    "volumes": ("block_storage", f"/volumes/detail?limit={PAGE}"),
}


class Prefetch:
    """The first listing's requests, started before the app imports Textual: they wait on the network in their
    own threads (the GIL is free meanwhile) while the first frame is drawn, then `first_poll` only converts.
    Costs the first frame ~10 ms (http.client's import)."""

    def __init__(self, cloud: str, clouds_yaml: str | None) -> None:
        self.cloud, self.clouds_yaml = cloud, clouds_yaml
        self.bodies: dict[str, dict[str, Any] | BaseException] = {}
        self._threads: list[threading.Thread] = []
        entry = None if authcache.proxied() else authcache.load(cloud, clouds_yaml)
        if entry is None or entry.get("verify") is False:  # `verify: false`: left to openstacksdk, which warns
            return
        try:
            if not {"compute", "block_storage"} <= set(entry.get("endpoints") or {}):
                return
            self.transport = CachedTransport(entry)
        except Exception as exc:  # a damaged entry, a CA file gone: the engine's connection does without the cache
            authcache.skipped("applying", exc)
            return
        for name in FIRST_READS:
            thread = threading.Thread(target=self._read, args=(name,), name=f"prefetch-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def started(self) -> bool:
        """Its requests went out (the cache can serve): the first listing is on its way."""
        return bool(self._threads)

    def _read(self, name: str) -> None:
        try:
            self.bodies[name] = self.transport.get(*FIRST_READS[name])
        except Exception as exc:  # re-raised by `get`, in the thread that converts the bodies
            self.bodies[name] = exc

    def get(self, service: str, path: str) -> dict[str, Any]:
        """The prefetched body of (service, path) when there is one, else a fresh GET."""
        for name, read in FIRST_READS.items():
            if read == (service, path):
                body = self.bodies.get(name)
                if isinstance(body, BaseException):
                    raise body
                if body is not None:
                    return body
        return self.transport.get(service, path)

    def poll(self) -> Polled | None:
        """The first `Polled` (without flavors), or None when the cache could not serve or a read failed."""
        from tui.core.cloud import rest
        from tui.core.cloud.openstack_convert import to_instance  # not the whole client: its mixins load later
        from tui.core.events import Polled

        if not self._threads:
            return None
        for thread in self._threads:
            thread.join(TIMEOUT_S + 1)
        try:
            return Polled(tuple(map(to_instance, rest.servers(self.get))), rest.quota(self.get),
                          tuple(rest.volumes(self.get)))
        except Exception as exc:  # an expired token, a moved endpoint, odd JSON: the engine's poll is the authority
            log.info("first listing from the token cache skipped: %s", exc)
            return None


def first_poll(cloud: str, clouds_yaml: str | None, emit: Emit, prefetch: Prefetch | None = None) -> bool:
    """Emit one `Polled` (without flavors) read through the cached token — by `prefetch` when given, else now;
    False when the cache cannot serve or anything fails (said in the log only: the engine's poll follows)."""
    polled = (prefetch or Prefetch(cloud, clouds_yaml)).poll()
    if polled is None:
        return False
    emit(polled)
    return True
