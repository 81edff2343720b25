"""The token and service catalog cache: a start skips keystone while the last token is still good.

One file, `auth-cache.json` in the app's state dir (a 0700 folder), readable by its owner alone (0600; an
owner-only ACL on Windows), written atomically. Per cloud it holds what keystoneauth's `get_auth_state()` gives —
the token and the token's body (user, project, roles, catalog) — its expiry, the endpoints the app reads, and the
TLS settings as paths. Never the password, a TOTP passcode, an application credential's secret, or any value of
clouds.yaml's `auth` section whose name looks secret: the entry is keyed by the non-secret identity (auth_url, user,
project, domain, region) and by the size and mtime of the clouds.yaml files, so a changed profile or a changed
account misses the cache. A file that others may read or write, or that another user owns, is not trusted.

Only keystone plugins keep a token of their own (keystoneauth's `BaseIdentityPlugin`: password, application
credential, token, TOTP, multi-factor, OIDC...); `admin_token` and `none` send a fixed token or none, and are never
cached. The cache is an optimisation that can never make connecting fail: any error reading, writing or applying it
is logged once (the app log) and the connection goes on without it.

Pure standard library: the app's first listing (`tui.core.cloud.quick`) reads it before openstacksdk is imported.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from tui.core import paths
from tui.core.errors import Refused

log = logging.getLogger(__name__)

CACHE_FILE = "auth-cache.json"
VERSION = 1
MIN_LIFE_S = 600.0  # a token with less left is not reused (keystoneauth re-authenticates below 120 s anyway)
SECRET_RE = re.compile(r"password|secret|token|passcode|totp|key|credential(?!_id)|cert", re.IGNORECASE)
EPHEMERAL_VARS = ("OS_PASSCODE",)  # a new TOTP code every 30 s names no other account: the token still serves
PROXY_VARS = ("https_proxy", "http_proxy", "all_proxy", "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")

T = TypeVar("T")
_logged: set[str] = set()  # what `skipped` has said in this process (each kind of failure once)


def skipped(doing: str, exc: BaseException) -> None:
    """Say once per process (the app log) that the cache was skipped, and why; the connection goes on without it."""
    key = f"{doing}:{type(exc).__name__}"
    if key not in _logged:
        _logged.add(key)
        log.warning("token cache skipped while %s (%s: %s); connecting without it", doing, type(exc).__name__, exc)


def never_fails(doing: str, default: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Any exception of the wrapped function is said once (`skipped`) and `default` returned instead."""

    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> T:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                skipped(doing, exc)
                result: T = default
                return result

        return guarded

    return wrap


def cache_path() -> Path:
    return paths.state_dir() / CACHE_FILE


def config_files(clouds_yaml: str | None) -> list[str]:
    """The files openstacksdk may read the profile from, in its order (OpenStackConfig's lookup, plus secure.yaml)."""
    if clouds_yaml:
        return [str(Path(clouds_yaml).expanduser())]
    found = [os.environ.get("OS_CLIENT_CONFIG_FILE", "")]
    for folder in (Path.cwd(), Path.home() / ".config" / "openstack", Path("/etc/openstack")):
        found += [str(folder / "clouds.yaml"), str(folder / "clouds.yml"), str(folder / "secure.yaml")]
    return [f for f in found if f]


def signature(cloud: str, clouds_yaml: str | None) -> dict[str, Any]:
    """What must not have changed since the entry was written: the cloud's name, each profile file's size and mtime,
    and the OS_* environment (non-secret values; of secret ones only that they are set; not OS_PASSCODE)."""
    files = {}
    for name in config_files(clouds_yaml):
        try:
            st = os.stat(name)
        except OSError:
            continue
        files[name] = [st.st_size, st.st_mtime_ns]
    env = {k: ("set" if SECRET_RE.search(k) else v) for k, v in sorted(os.environ.items())
           if k.startswith("OS_") and k not in EPHEMERAL_VARS}
    return {"cloud": cloud, "files": files, "env": env}


def identity(auth: Mapping[str, Any], region: str | None, interface: str | None) -> dict[str, Any]:
    """The account a token belongs to, without its secrets (clouds.yaml's `auth` minus any secret-looking key)."""
    out = {k: v for k, v in sorted(auth.items()) if not SECRET_RE.search(k) and isinstance(v, str | int | bool)}
    return out | {"region": region or "", "interface": interface or ""}


class Untrusted(Refused):
    """The cache file is not the user's own private file: it is not read."""


def _read_all() -> dict[str, Any]:
    """The whole cache (empty when there is none or it is of another version). Raises on an unreadable, corrupt or
    untrusted file: the callers are guarded (`never_fails`)."""
    path = cache_path()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return {}
    with os.fdopen(fd, "rb") as fh:
        if sys.platform != "win32":
            st = os.fstat(fh.fileno())
            if st.st_uid != os.getuid() or st.st_mode & 0o077:
                raise Untrusted(f"{path} is not private to this user (mode {st.st_mode & 0o777:o}, uid {st.st_uid})")
        data = json.loads(fh.read().decode("utf-8"))
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return {}
    if not isinstance(data.get("clouds", {}), dict):
        raise ValueError(f"{path}: 'clouds' is not a mapping")
    return data


@never_fails("reading", None)
def load(cloud: str, clouds_yaml: str | None) -> dict[str, Any] | None:
    """The cloud's entry when its profile is unchanged and its token lives at least MIN_LIFE_S more; else None."""
    entry = _read_all().get("clouds", {}).get(cloud)
    if not isinstance(entry, dict) or entry.get("signature") != signature(cloud, clouds_yaml):
        return None
    if float(entry.get("expires_at") or 0) < time.time() + MIN_LIFE_S:
        return None
    if not isinstance(entry.get("auth_state"), str):
        raise ValueError(f"the entry of cloud '{cloud}' has no auth_state")
    return entry


def _read_for_update() -> dict[str, Any]:
    """The cache to update: a corrupt or untrusted file is said once and replaced by a fresh one."""
    try:
        return _read_all() or {"version": VERSION, "clouds": {}}
    except (OSError, ValueError, Untrusted) as exc:
        skipped("reading", exc)
        return {"version": VERSION, "clouds": {}}


@never_fails("writing", None)
def store(cloud: str, clouds_yaml: str | None, **fields: Any) -> None:
    """Merge `fields` into the cloud's entry (a new identity or token replaces the entry); never raises."""
    data = _read_for_update()
    clouds = data.setdefault("clouds", {})
    entry = clouds.get(cloud) if isinstance(clouds.get(cloud), dict) else {}
    if "auth_state" in fields and entry.get("identity") != fields.get("identity"):
        entry = {}
    entry |= fields
    entry["signature"] = signature(cloud, clouds_yaml)
    clouds[cloud] = entry
    _write_private(cache_path(), json.dumps(data).encode())


@never_fails("writing", None)
def forget(cloud: str) -> None:
    data = _read_for_update()
    if data.get("clouds", {}).pop(cloud, None) is not None:
        _write_private(cache_path(), json.dumps(data).encode())


def _write_private(path: Path, payload: bytes) -> None:
    """Owner-only from its first byte, replaced atomically."""
    paths.ensure_private_dir(path.parent)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # a stale one of an earlier process with this pid: its mode is not ours to keep
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            if sys.platform == "win32":
                from tui.core import platform

                platform.restrict_to_owner(tmp)
            fh.write(payload)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


# -- keystoneauth ----------------------------------------------------------------------------------------------


def supports_state(plugin: Any) -> bool:
    """Whether keystoneauth's plugin keeps a keystone token of its own (get/set_auth_state): every identity plugin
    does; `admin_token` (a fixed token) and `none` do not, and raise NotImplementedError."""
    try:
        from keystoneauth1.identity.base import BaseIdentityPlugin
    except ImportError:
        return False
    return isinstance(plugin, BaseIdentityPlugin)


@never_fails("applying", None)
def restore(conn: Any, cloud: str, clouds_yaml: str | None) -> str | None:
    """Install the cached token into openstacksdk's session (keystoneauth `set_auth_state`) when it belongs to this
    account; returns the token installed (or None: the session authenticates as usual)."""
    plugin: Any = getattr(conn.session, "auth", None)
    if not supports_state(plugin):
        return None
    entry = load(cloud, clouds_yaml)
    if entry is None or entry.get("identity") != _identity_of(conn):
        return None
    token = str(json.loads(entry["auth_state"]).get("auth_token") or "")
    if not token:
        raise ValueError(f"the entry of cloud '{cloud}' has no token")
    try:
        plugin.set_auth_state(entry["auth_state"])
        ref = plugin.auth_ref  # read now what keystoneauth reads lazily: a damaged body fails here, not later
        if ref.auth_token != token or ref.expires is None or ref.will_expire_soon(MIN_LIFE_S / 2):
            raise ValueError("the cached token does not read back whole")
        ref.service_catalog.get_endpoints()
    except Exception:
        plugin.set_auth_state(None)  # nothing half-installed: the session authenticates as usual
        raise
    return token


@never_fails("writing", None)
def remember(conn: Any, cloud: str, clouds_yaml: str | None, used: str | None) -> None:
    """After `authorize()`: store the session's token when it is not the one restored."""
    plugin: Any = getattr(conn.session, "auth", None)
    if not supports_state(plugin):
        return
    state = plugin.get_auth_state()
    if not state:
        return
    parsed = json.loads(state)
    if parsed.get("auth_token") == used:
        return
    expires = plugin.auth_ref.expires
    if expires is None:  # a token without an expiry: not worth keeping
        return
    verify, cert = conn.session.verify, conn.session.cert
    store(cloud, clouds_yaml, identity=_identity_of(conn), auth_state=state, expires_at=expires.timestamp(),
          verify=verify if isinstance(verify, bool | str) else True,
          cert=list(cert) if isinstance(cert, tuple) else cert if isinstance(cert, str) else None,
          endpoints={})


@never_fails("writing", None)
def note_endpoint(cloud: str, clouds_yaml: str | None, service: str, url: str) -> None:
    """Record the versioned endpoint a read used (the app's first listing goes straight to it)."""
    data = _read_all()
    entry = data.get("clouds", {}).get(cloud)
    if isinstance(entry, dict) and entry.get("endpoints", {}).get(service) != url:
        store(cloud, clouds_yaml, endpoints={**entry.get("endpoints", {}), service: url})


def _identity_of(conn: Any) -> dict[str, Any]:
    config = conn.config
    return identity(config.config.get("auth") or {}, config.get_region_name("compute"),
                    config.get_interface("compute"))


def proxied() -> bool:
    """True when an HTTP proxy is configured: the standard-library first listing leaves such a cloud to
    openstacksdk (requests honours the proxy variables; http.client does not)."""
    return any(os.environ.get(v) for v in PROXY_VARS)
