"""Keystone v3: discovery, password and application-credential tokens, the service catalog."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tui.sandbox.router import HTTPError, Request, Response, Router

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox

TOKEN_TTL_S = 3600


class Tokens:
    """Issued tokens, kept in the sandbox's state under their SHA-256: like Keystone's Fernet tokens they stay
    valid across a restart (a client's cached token still works), and the state file holds no usable token."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def _table(self) -> dict[str, dict[str, Any]]:
        table: dict[str, dict[str, Any]] = self.state.data.setdefault("tokens", {})
        return table

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def __setitem__(self, token: str, record: dict[str, Any]) -> None:
        with self.state.lock:
            table, now = self._table(), time.time()
            for key in [k for k, r in table.items() if r["expires"] < now]:
                del table[key]
            table[self._key(token)] = record
            self.state.touch()

    def get(self, token: str) -> dict[str, Any] | None:
        return self._table().get(self._key(token))

    def pop(self, token: str) -> None:
        with self.state.lock:
            if self._table().pop(self._key(token), None) is not None:
                self.state.touch()
USER = "demo"
PROJECT = "cades-demo"
DOMAIN = {"id": "default", "name": "Default"}
UNAUTHORIZED = {
    "error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}
}


def unauthorized() -> HTTPError:
    return HTTPError(401, UNAUTHORIZED, {"WWW-Authenticate": 'Keystone uri="/identity"'})


def _version(sb: Sandbox) -> dict[str, Any]:
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": f"{sb.url}/identity/v3/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    }


def catalog(sb: Sandbox) -> list[dict[str, Any]]:
    pid = sb.state.data["project_id"]
    services = [
        ("identity", "keystone", f"{sb.url}/identity"),
        ("compute", "nova", f"{sb.url}/compute/v2.1"),
        ("image", "glance", f"{sb.url}/image"),
        ("network", "neutron", f"{sb.url}/network"),
        ("volumev3", "cinderv3", f"{sb.url}/volume/v3/{pid}"),
        ("block-storage", "cinder", f"{sb.url}/volume/v3/{pid}"),
    ]
    out = []
    for stype, name, url in services:
        sid = uuid.uuid5(uuid.NAMESPACE_URL, stype).hex
        out.append(
            {
                "id": sid,
                "type": stype,
                "name": name,
                "endpoints": [
                    {
                        "id": uuid.uuid5(uuid.NAMESPACE_URL, f"{stype}:{iface}").hex,
                        "interface": iface,
                        "region": "RegionOne",
                        "region_id": "RegionOne",
                        "url": url,
                    }
                    for iface in ("public", "internal")
                ],
            }
        )
    return out


def _check_password(sb: Sandbox, ident: dict[str, Any]) -> None:
    user = (ident.get("password") or {}).get("user") or {}
    name_ok = user.get("name") == USER or user.get("id") == sb.state.data["user_id"]
    domain = user.get("domain") or {}
    domain_ok = "id" in user or domain.get("name") == DOMAIN["name"] or domain.get("id") == DOMAIN["id"]
    pw_ok = hmac.compare_digest(str(user.get("password", "")), sb.secrets["password"])
    if not (name_ok and domain_ok and pw_ok):
        raise unauthorized()


def _check_app_cred(sb: Sandbox, ident: dict[str, Any]) -> None:
    cred = ident.get("application_credential") or {}
    ok_id = cred.get("id") == sb.secrets["app_cred_id"] or cred.get("name") == sb.secrets["app_cred_name"]
    if not (ok_id and hmac.compare_digest(str(cred.get("secret", "")), sb.secrets["app_cred_secret"])):
        raise unauthorized()


def _scoped(sb: Sandbox, scope: Any) -> bool:
    if not scope:
        return False
    project = scope.get("project") if isinstance(scope, dict) else None
    if not project:
        raise unauthorized()
    if project.get("id") == sb.state.data["project_id"]:
        return True
    domain = project.get("domain") or {}
    if project.get("name") == PROJECT and (domain.get("name") == DOMAIN["name"] or domain.get("id") == DOMAIN["id"]):
        return True
    raise unauthorized()


def register(router: Router, sb: Sandbox) -> None:
    def versions(req: Request) -> Response:
        return Response(300, {"versions": {"values": [_version(sb)]}})

    def version(req: Request) -> Response:
        return Response(200, {"version": _version(sb)})

    def issue(req: Request) -> Response:
        auth = (req.body or {}).get("auth") or {}
        ident = auth.get("identity") or {}
        methods = ident.get("methods") or []
        if methods == ["password"]:
            _check_password(sb, ident)
            scoped = _scoped(sb, auth.get("scope"))
        elif methods == ["application_credential"]:
            _check_app_cred(sb, ident)
            scoped = True
        else:
            raise unauthorized()
        now = datetime.now(UTC)
        data = sb.state.data
        token: dict[str, Any] = {
            "methods": methods,
            "user": {"id": data["user_id"], "name": USER, "domain": DOMAIN, "password_expires_at": None},
            "audit_ids": [secrets.token_urlsafe(16)],
            "issued_at": now.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "expires_at": (now + timedelta(seconds=TOKEN_TTL_S)).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        }
        if scoped:
            token.update(
                project={"id": data["project_id"], "name": PROJECT, "domain": DOMAIN},
                is_domain=False,
                roles=[{"id": uuid.uuid5(uuid.NAMESPACE_URL, r).hex, "name": r} for r in ("member", "reader")],
                catalog=catalog(sb),
            )
        if methods == ["application_credential"]:
            token["application_credential"] = {
                "id": sb.secrets["app_cred_id"],
                "name": sb.secrets["app_cred_name"],
                "restricted": True,
            }
        token_id = "gAAAAA" + secrets.token_urlsafe(96)
        sb.tokens[token_id] = {"expires": time.time() + TOKEN_TTL_S, "scoped": scoped, "body": token}
        return Response(201, {"token": token}, {"X-Subject-Token": token_id})

    def validate(req: Request) -> Response:
        rec = sb.tokens.get(req.headers.get("x-subject-token", ""))
        if rec is None or rec["expires"] < time.time():
            raise HTTPError(404, {"error": {"code": 404, "title": "Not Found", "message": "Could not find token."}})
        return Response(200, {"token": rec["body"]}, {"X-Subject-Token": req.headers["x-subject-token"]})

    def revoke(req: Request) -> Response:
        sb.tokens.pop(req.headers.get("x-subject-token", ""))
        return Response(204)

    def project(req: Request) -> Response:
        if req.params["id"] != sb.state.data["project_id"]:
            raise HTTPError(
                404,
                {
                    "error": {
                        "code": 404,
                        "title": "Not Found",
                        "message": f"Could not find project: {req.params['id']}.",
                    }
                },
            )
        return Response(
            200,
            {
                "project": {
                    "id": sb.state.data["project_id"],
                    "name": PROJECT,
                    "domain_id": "default",
                    "enabled": True,
                    "description": "cades-tui sandbox",
                    "is_domain": False,
                    "parent_id": "default",
                    "tags": [],
                    "options": {},
                }
            },
        )

    router.add("GET", r"/identity", versions, auth=False)
    router.add("GET", r"/identity/v3", version, auth=False)
    router.add("POST", r"/identity/v3/auth/tokens", issue, auth=False)
    router.add("GET", r"/identity/v3/auth/tokens", validate)
    router.add("DELETE", r"/identity/v3/auth/tokens", revoke)
    router.add("GET", r"/identity/v3/projects/(?P<id>[^/]+)", project)


def authenticate(sb: Sandbox, req: Request) -> None:
    """The guard for every authenticated route: a known, unexpired, project-scoped X-Auth-Token."""
    rec = sb.tokens.get(req.headers.get("x-auth-token", ""))
    if rec is None or rec["expires"] < time.time() or not rec["scoped"]:
        raise unauthorized()
    req.token = rec
