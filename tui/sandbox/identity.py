"""Keystone v3: discovery; tokens for a password, an application credential, a TOTP passcode, a password and a
passcode together (a user with multi-factor rules), or another token (rescoping: federation uses it); the service
catalog. Federated sign-in (OpenID Connect) is `tui.sandbox.federation`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tui.sandbox import appcreds, credentials, federation
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
USER = "demo"  # password; a TOTP credential too: it signs in with either
MFA_USER = "demo-mfa"  # password and TOTP credential, and the rule that its sign-in needs both
PROJECT = "cades-demo"
DOMAIN = {"id": "default", "name": "Default"}
UNAUTHORIZED = {
    "error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}
}
METHODS = ("password", "totp", "token", "application_credential")
TOTP_STEP_S = 30
TOTP_PREVIOUS_WINDOWS = 1  # Keystone's [totp] included_previous_windows default: the last code still passes


@dataclass
class AuthModes:
    """How the sandbox's services check who calls (test knobs, changed at any time, not persisted).

    `noauth`: every request of Nova, Cinder, Glance and Neutron is the project's, whatever its X-Auth-Token, as
    services deployed with `auth_strategy = noauth2` take it; clients reach them with endpoint overrides.
    `oidc`: the identity provider keystone's federation endpoint trusts (`tui.sandbox.federation`)."""

    noauth: bool = False
    oidc: Any = None  # a federation.OIDCTrust


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


# -- users and their credentials ---------------------------------------------------------------------------


def users(sb: Sandbox) -> list[dict[str, Any]]:
    """The local users: (token body's `user`) plus the secret names of their password, their TOTP credential and
    their multi-factor rules (Keystone's `options.multi_factor_auth_rules`)."""
    uid = sb.state.data["user_id"]
    mfa_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{uid}:{MFA_USER}").hex
    return [
        {"id": uid, "name": USER, "password": "password", "totp": "totp_secret", "rules": []},
        {"id": mfa_id, "name": MFA_USER, "password": "mfa_password", "totp": "totp_secret",
         "rules": [["password", "totp"]]},
    ]


def _user(sb: Sandbox, ref: dict[str, Any]) -> dict[str, Any]:
    """The local user a request names (by id, or by name in the Default domain)."""
    domain = ref.get("domain") or {}
    for user in users(sb):
        if ref.get("id") == user["id"]:
            return user
        in_default = domain.get("name") == DOMAIN["name"] or domain.get("id") == DOMAIN["id"]
        if ref.get("name") == user["name"] and in_default:
            return user
    raise unauthorized()


def _body_user(user: dict[str, Any]) -> dict[str, Any]:
    return {"id": user["id"], "name": user["name"], "domain": DOMAIN, "password_expires_at": None}


def _check_password(sb: Sandbox, ident: dict[str, Any]) -> dict[str, Any]:
    ref = (ident.get("password") or {}).get("user") or {}
    user = _user(sb, ref)
    if not hmac.compare_digest(str(ref.get("password", "")).encode(), sb.secrets[user["password"]].encode()):
        raise unauthorized()
    return _body_user(user)


def passcode_ok(secret: str, passcode: str, now: float | None = None) -> bool:
    """Whether `passcode` is the RFC 6238 code of this or the previous TOTP_PREVIOUS_WINDOWS windows (as Keystone)."""
    now = time.time() if now is None else now
    return any(hmac.compare_digest(credentials.totp(secret, now - back * TOTP_STEP_S).encode(), passcode.encode())
               for back in range(TOTP_PREVIOUS_WINDOWS + 1))


def _check_totp(sb: Sandbox, ident: dict[str, Any]) -> dict[str, Any]:
    ref = (ident.get("totp") or {}).get("user") or {}
    user = _user(sb, ref)
    if not passcode_ok(sb.secrets[user["totp"]], str(ref.get("passcode") or "")):
        raise unauthorized()
    return _body_user(user)


def _check_app_cred(sb: Sandbox, ident: dict[str, Any]) -> dict[str, Any]:
    cred = ident.get("application_credential") or {}
    made = appcreds.check(sb, cred)  # one a user made (with access rules, perhaps)
    if made is not None:
        if not made:
            raise unauthorized()
        user = next((u for u in users(sb) if u["id"] == made["user_id"]), None)
        if user is None:
            raise unauthorized()
        return dict(_body_user(user), _app_cred=made)
    ok_id = cred.get("id") == sb.secrets["app_cred_id"] or cred.get("name") == sb.secrets["app_cred_name"]
    if not (ok_id and hmac.compare_digest(str(cred.get("secret", "")), sb.secrets["app_cred_secret"])):
        raise unauthorized()
    return _body_user(users(sb)[0])


def _check_token(sb: Sandbox, ident: dict[str, Any]) -> dict[str, Any]:
    """`token` method: an unexpired token of ours, traded for one of the asked scope (its user, its expiry)."""
    rec = sb.tokens.get(str((ident.get("token") or {}).get("id") or ""))
    if rec is None or rec["expires"] < time.time():
        raise HTTPError(404, {"error": {"code": 404, "title": "Not Found", "message": "Could not find token."}})
    if "application_credential" in rec["body"]:
        raise HTTPError(403, {"error": {"code": 403, "title": "Forbidden",
                                        "message": "Using a token issued by an application credential to obtain "
                                                   "another token is not allowed."}})
    return dict(rec["body"]["user"], _expires=rec["expires"], _methods=rec["body"]["methods"])


CHECKS = {"password": _check_password, "totp": _check_totp, "application_credential": _check_app_cred,
          "token": _check_token}


def _mfa_rules(sb: Sandbox, user_id: str, methods: list[str]) -> None:
    """A user with multi-factor rules signs in only with every method of one rule (Keystone answers the rest with
    401 and an auth receipt naming what is missing; a receipt is not accepted back here)."""
    rules: list[list[str]] = next((u["rules"] for u in users(sb) if u["id"] == user_id), [])
    if not rules or any(set(rule) <= set(methods) for rule in rules):
        return
    expires = _stamp(datetime.now(UTC) + timedelta(minutes=5))
    receipt = {"methods": methods, "user": {"id": user_id}, "expires_at": expires}
    raise HTTPError(401, {"receipt": receipt, "required_auth_methods": rules},
                    {"Openstack-Auth-Receipt": "sandbox-" + secrets.token_urlsafe(16),
                     "WWW-Authenticate": 'Keystone uri="/identity"'})


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


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def new_token(sb: Sandbox, user: dict[str, Any], methods: list[str], scoped: bool,
              expires: float | None = None) -> tuple[str, dict[str, Any]]:
    """Issue a token (kept by its hash, see Tokens): its id and body."""
    now = datetime.now(UTC)
    expires = expires or time.time() + TOKEN_TTL_S
    token: dict[str, Any] = {
        "methods": methods,
        "user": user,
        "audit_ids": [secrets.token_urlsafe(16)],
        "issued_at": _stamp(now),
        "expires_at": _stamp(datetime.fromtimestamp(expires, UTC)),
    }
    if scoped:
        data = sb.state.data
        token.update(
            project={"id": data["project_id"], "name": PROJECT, "domain": DOMAIN},
            is_domain=False,
            roles=[{"id": uuid.uuid5(uuid.NAMESPACE_URL, r).hex, "name": r} for r in ("member", "reader")],
            catalog=catalog(sb),
        )
    token_id = "gAAAAA" + secrets.token_urlsafe(96)
    sb.tokens[token_id] = {"expires": expires, "scoped": scoped, "body": token}
    return token_id, token


def issue_token(sb: Sandbox, auth: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """POST /v3/auth/tokens: every method named must pass and name the same user; a user's multi-factor rules
    must be met; the token is scoped to the project when asked (an application credential's always is)."""
    ident = auth.get("identity") or {}
    methods = list(ident.get("methods") or [])
    if not methods or len(set(methods)) != len(methods) or not set(methods) <= set(METHODS):
        raise unauthorized()
    found = [CHECKS[m](sb, ident) for m in methods]
    if len({u["id"] for u in found}) != 1:
        raise unauthorized()
    user = {k: v for k, v in found[0].items() if not k.startswith("_")}
    _mfa_rules(sb, user["id"], methods)
    scoped = True if "application_credential" in methods else _scoped(sb, auth.get("scope"))
    expires = min((u["_expires"] for u in found if "_expires" in u), default=None)
    shown = list(dict.fromkeys([*(m for u in found for m in u.get("_methods", [])), *methods]))
    token_id, token = new_token(sb, user, shown, scoped, expires)
    made = next((u["_app_cred"] for u in found if "_app_cred" in u), None)
    if made is not None:
        token["application_credential"] = appcreds.token_part(made)
    elif "application_credential" in methods:
        token["application_credential"] = {
            "id": sb.secrets["app_cred_id"],
            "name": sb.secrets["app_cred_name"],
            "restricted": True,
        }
    return token_id, token


def register(router: Router, sb: Sandbox) -> None:
    def versions(req: Request) -> Response:
        return Response(300, {"versions": {"values": [_version(sb)]}})

    def version(req: Request) -> Response:
        return Response(200, {"version": _version(sb)})

    def issue(req: Request) -> Response:
        token_id, token = issue_token(sb, (req.body or {}).get("auth") or {})
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
    federation.register(router, sb)
    appcreds.register(router, sb)


NOAUTH = {"expires": float("inf"), "scoped": True, "body": {"methods": [], "user": {"id": "noauth"}}}


def authenticate(sb: Sandbox, req: Request) -> None:
    """The guard for every authenticated route: a known, unexpired, project-scoped X-Auth-Token (in noauth mode,
    the services' routes take any)."""
    if sb.auth_modes.noauth and not req.path.startswith("/identity"):
        req.token = NOAUTH
        return
    rec = sb.tokens.get(req.headers.get("x-auth-token", ""))
    if rec is None or rec["expires"] < time.time() or not rec["scoped"]:
        raise unauthorized()
    appcreds.enforce(req, rec)  # a credential's access rules, as keystonemiddleware checks them
    req.token = rec
