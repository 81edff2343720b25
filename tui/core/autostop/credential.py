"""The application credential a VM shelves itself with: made for that VM only, restricted by Keystone access rules
to one call — `POST <compute path>/servers/<id>/action` — and deleted with the VM (blocking: openstacksdk).

Keystonemiddleware matches a rule's path against the whole request path (`request.path`, the endpoint's own path
included), so the rule's path is the compute endpoint's path + `/servers/<id>/action`: `/v2.1/servers/<id>/action`
where Nova is served at the root, `/compute/v2.1/…` behind a prefix (devstack, the sandbox).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from tui.core.cloud.base import Cloud, CloudError

PREFIX = "cades-autostop-"
log = logging.getLogger(__name__)


class AccessRulesRefused(CloudError):
    """The cloud does not allow application credentials restricted by access rules: shelve cannot be armed."""


@dataclass(frozen=True, slots=True)
class VMCredential:
    id: str
    secret: str  # written to the VM only (0600), never to a log or the app's state
    auth_url: str
    compute_url: str
    rule_path: str


def name_for(server_id: str) -> str:
    return PREFIX + server_id


def _conn(cloud: Cloud) -> Any:
    conn = getattr(cloud, "conn", None)
    if conn is None:
        raise AccessRulesRefused("this cloud connection cannot make application credentials", "use --action stop")
    return conn


def rule_for(compute_url: str, server_id: str) -> dict[str, str]:
    path = urlparse(compute_url).path.rstrip("/")
    return {"service": "compute", "method": "POST", "path": f"{path}/servers/{server_id}/action"}


def create(cloud: Cloud, server_id: str) -> VMCredential:
    """A fresh credential for `server_id` (an older one of that VM is deleted first). AccessRulesRefused where the
    cloud refuses access rules or ignores them (it would be unrestricted: deleted at once)."""
    conn = _conn(cloud)
    forget(cloud, server_id)
    compute_url = str(conn.compute.get_endpoint())
    auth_url = str(conn.session.get_endpoint(service_type="identity", interface="public") or conn.auth["auth_url"])
    rule = rule_for(compute_url, server_id)
    fix = "use --action stop (it needs no credential on the VM)"
    extra = {"roles": roles} if (roles := _token_roles(conn)) else {}
    for attempt in (1, 2):
        try:
            made = conn.identity.create_application_credential(
                user=conn.current_user_id, name=name_for(server_id), unrestricted=False, access_rules=[rule],
                description="cades-tui autostop: shelve this one server (deleted with it)", **extra)
            break
        except Exception as exc:  # openstacksdk's HTTP errors: the cloud refuses the request
            status = getattr(exc, "status_code", None)
            if status == 409 and attempt == 1:  # one of that name made meanwhile (another terminal, a retried
                forget(cloud, server_id)          # request whose answer was lost): its secret is unknown here
                continue
            raise AccessRulesRefused(f"this cloud refused an application credential with access rules "
                                     f"(HTTP {status}: {_short(exc)})", fix, status) from None
    rules = list(getattr(made, "access_rules", None) or [])
    if not any(r.get("path") == rule["path"] and r.get("method") == "POST" for r in rules):
        _delete(conn, made.id)
        raise AccessRulesRefused("this cloud does not keep access rules on application credentials (the "
                                 "credential would be unrestricted; deleted)", fix)
    # the catalog's identity endpoint may carry its version ("…:5000/v3", usual) or not ("…/identity", devstack):
    # the watchdog appends "/v3/auth/tokens" to the unversioned root
    root = re.sub(r"/v3(\.\d+)?/?$", "", auth_url.rstrip("/"))
    return VMCredential(made.id, str(made.secret), root, compute_url.rstrip("/"), rule["path"])


def _token_roles(conn: Any) -> list[dict[str, str]]:
    """The roles the credential gets: `member` alone where the token has it (what shelving one's own server
    needs), else none given (Keystone copies the token's). Keystone expands implied roles when it stores them, and a
    role both given and implied (reader, implied by member) fails with HTTP 409 "Duplicate entry" (real Keystone)."""
    try:
        access = conn.session.auth.get_access(conn.session)
        pairs = list(zip(access.role_ids or [], access.role_names or [], strict=False))
    except Exception as exc:  # keystoneauth's plugins differ: without the list, Keystone picks the roles
        log.info("token roles not read: %s", _short(exc))
        return []
    return [{"id": str(rid)} for rid, name in pairs if name == "member"][:1]


def forget(cloud: Cloud, server_id: str) -> int:
    """Delete the VM's credentials (by name); how many. Never raises for a cloud that has none."""
    conn = getattr(cloud, "conn", None)
    if conn is None:
        return 0
    try:
        found = [c for c in conn.identity.application_credentials(user=conn.current_user_id)
                 if c.name == name_for(server_id)]
    except Exception as exc:
        log.info("application credentials of %s not listed: %s", server_id, _short(exc))
        return 0
    for cred in found:
        _delete(conn, cred.id)
    return len(found)


def _delete(conn: Any, cred_id: str) -> None:
    conn.identity.delete_application_credential(conn.current_user_id, cred_id, ignore_missing=True)


def _short(exc: Exception) -> str:
    text = str(getattr(exc, "details", "") or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
