"""The token and service catalog cache: a start skips keystone while the last token is still good.

One file, `auth-cache.json` in the app's state dir, readable by its owner alone (0600; an owner-only ACL on
Windows), written atomically. Per cloud it holds what keystoneauth's `get_auth_state()` gives — the token and the
token's body (user, project, roles, catalog) — its expiry, the endpoints the app reads, and the TLS settings as
paths. Never the password, an application credential's secret, or any value of clouds.yaml's `auth` section whose
name looks secret: the entry is keyed by the non-secret identity (auth_url, user, project, domain, region) and by
the size and mtime of the clouds.yaml files, so a changed profile or a changed account misses the cache.

Pure standard library: the app's first listing (`tui.core.cloud.quick`) reads it before openstacksdk is imported.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tui.core import paths

log = logging.getLogger(__name__)

CACHE_FILE = "auth-cache.json"
VERSION = 1
MIN_LIFE_S = 600.0  # a token with less left is not reused (keystoneauth re-authenticates below 120 s anyway)
SECRET_RE = re.compile(r"password|secret|token|passcode|totp|key|credential(?!_id)|cert", re.IGNORECASE)
PROXY_VARS = ("https_proxy", "http_proxy", "all_proxy", "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")


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
    and the OS_* environment (non-secret values; of secret ones only that they are set)."""
    files = {}
    for name in config_files(clouds_yaml):
        try:
            st = os.stat(name)
        except OSError:
            continue
        files[name] = [st.st_size, st.st_mtime_ns]
    env = {k: ("set" if SECRET_RE.search(k) else v) for k, v in sorted(os.environ.items()) if k.startswith("OS_")}
    return {"cloud": cloud, "files": files, "env": env}


def identity(auth: Mapping[str, Any], region: str | None, interface: str | None) -> dict[str, Any]:
    """The account a token belongs to, without its secrets (clouds.yaml's `auth` minus any secret-looking key)."""
    out = {k: v for k, v in sorted(auth.items()) if not SECRET_RE.search(k) and isinstance(v, str | int | bool)}
    return out | {"region": region or "", "interface": interface or ""}


def _read_all() -> dict[str, Any]:
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("version") == VERSION else {}


def load(cloud: str, clouds_yaml: str | None) -> dict[str, Any] | None:
    """The cloud's entry when its profile is unchanged and its token lives at least MIN_LIFE_S more; else None."""
    entry = _read_all().get("clouds", {}).get(cloud)
    if not isinstance(entry, dict) or entry.get("signature") != signature(cloud, clouds_yaml):
        return None
    if float(entry.get("expires_at") or 0) < time.time() + MIN_LIFE_S:
        return None
    return entry


def store(cloud: str, clouds_yaml: str | None, **fields: Any) -> None:
    """Merge `fields` into the cloud's entry (a new identity or token replaces the entry); never raises."""
    try:
        data = _read_all() or {"version": VERSION, "clouds": {}}
        clouds = data.setdefault("clouds", {})
        entry = clouds.get(cloud) if isinstance(clouds.get(cloud), dict) else {}
        if "auth_state" in fields and entry.get("identity") != fields.get("identity"):
            entry = {}
        entry |= fields
        entry["signature"] = signature(cloud, clouds_yaml)
        clouds[cloud] = entry
        _write_private(cache_path(), json.dumps(data).encode())
    except OSError as exc:
        log.warning("token cache not written: %s", exc)


def forget(cloud: str) -> None:
    data = _read_all()
    if data.get("clouds", {}).pop(cloud, None) is not None:
        with contextlib.suppress(OSError):
            _write_private(cache_path(), json.dumps(data).encode())


def _write_private(path: Path, payload: bytes) -> None:
    """Owner-only from its first byte, replaced atomically."""
    paths.ensure_private_dir(path.parent)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
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


def restore(conn: Any, cloud: str, clouds_yaml: str | None) -> str | None:
    """Install the cached token into openstacksdk's session (keystoneauth `set_auth_state`) when it belongs to this
    account; returns the token installed (or None: the session authenticates as usual)."""
    entry = load(cloud, clouds_yaml)
    plugin = getattr(conn.session, "auth", None)
    if entry is None or plugin is None or not hasattr(plugin, "set_auth_state"):
        return None
    if entry.get("identity") != _identity_of(conn):
        return None
    try:
        plugin.set_auth_state(entry["auth_state"])
    except (KeyError, TypeError, ValueError) as exc:
        log.info("cached token not used: %s", exc)
        return None
    return str(json.loads(entry["auth_state"]).get("auth_token") or "") or None


def remember(conn: Any, cloud: str, clouds_yaml: str | None, used: str | None) -> None:
    """After `authorize()`: store the session's token when it is not the one restored."""
    plugin = getattr(conn.session, "auth", None)
    if plugin is None or not hasattr(plugin, "get_auth_state"):
        return
    state = plugin.get_auth_state()
    if not state:
        return
    parsed = json.loads(state)
    if parsed.get("auth_token") == used:
        return
    expires = plugin.auth_ref.expires
    verify, cert = conn.session.verify, conn.session.cert
    store(cloud, clouds_yaml, identity=_identity_of(conn), auth_state=state, expires_at=expires.timestamp(),
          verify=verify if isinstance(verify, bool | str) else True,
          cert=list(cert) if isinstance(cert, tuple) else cert if isinstance(cert, str) else None,
          endpoints={})


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
