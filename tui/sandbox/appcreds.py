"""Keystone's application credentials made by users (`/v3/users/{id}/application_credentials`), with access rules,
enforced as keystonemiddleware does (`validate_allowed_request`): a token of a credential with access rules passes a
service only for a request whose method, service type and whole path (`request.path`, `*`/`{tag}` one segment, `**`
any) match one rule — else 401. Keystone refuses a restricted credential's token to make another (403), and keeps
only the secret's hash (shown once, on create). The sandbox's own fixed credential (secrets.json) stays as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from typing import TYPE_CHECKING, Any

from tui.sandbox.router import HTTPError, Request, Response, Router
from tui.sandbox.state import now_iso

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox

# the sandbox's mounts -> the service type keystonemiddleware is configured with in front of each
SERVICE_OF_PREFIX = (("/compute", "compute"), ("/image", "image"), ("/network", "network"),
                     ("/volume", "block-storage"), ("/identity", "identity"))
_FIELDS = ("id", "name", "description", "expires_at", "project_id", "roles", "unrestricted", "access_rules")


def _table(sb: Sandbox) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = sb.state.data.setdefault("app_creds", {})
    return table


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _error(code: int, title: str, message: str) -> HTTPError:
    return HTTPError(code, {"error": {"code": code, "title": title, "message": message}})


def _view(sb: Sandbox, rec: dict[str, Any]) -> dict[str, Any]:
    out = {k: rec.get(k) for k in _FIELDS}
    out["links"] = {"self": f"{sb.auth_url}/v3/users/{rec['user_id']}/application_credentials/{rec['id']}"}
    return out


def check(sb: Sandbox, cred: dict[str, Any]) -> dict[str, Any] | None:
    """The credential a sign-in names (by id, or name + user) when its secret is right; None when it names none of
    these (the caller tries the fixed one)."""
    user_id = ((cred.get("user") or {}).get("id")) or ""
    with sb.state.lock:
        for rec in _table(sb).values():
            if cred.get("id") == rec["id"] or (cred.get("name") == rec["name"] and user_id == rec["user_id"]):
                if hmac.compare_digest(_hash(str(cred.get("secret", ""))), rec["secret_sha256"]):
                    return rec
                return {}
    return None


def token_part(rec: dict[str, Any]) -> dict[str, Any]:
    """The token body's `application_credential` (keystone's render_token)."""
    part = {"id": rec["id"], "name": rec["name"], "restricted": not rec["unrestricted"]}
    if rec.get("access_rules"):
        part["access_rules"] = rec["access_rules"]
    return part


def path_matches(request_path: str, pattern: str) -> bool:
    """keystonemiddleware's `_path_matches`: `{tag}` and `*` one path segment, `**` anything."""
    regex = ""
    for m in re.finditer(r"(?P<tag>{[^}]*})|(?P<wild>\*(?=$|[^\*]))|(?P<rec_wild>\*\*)|(?P<literal>[^{}\*])", pattern):
        if m["tag"] or m["wild"]:
            regex += r"[^\/]+"
        if m["rec_wild"]:
            regex += ".*"
        if m["literal"]:
            regex += re.escape(m["literal"])
    return re.match(f"^{regex}$", request_path) is not None


def enforce(req: Request, record: dict[str, Any]) -> None:
    """401 for a request outside the access rules of the credential the token was issued for."""
    cred = record.get("body", {}).get("application_credential") or {}
    rules = cred.get("access_rules")
    if rules is None:
        return
    service = next((s for prefix, s in SERVICE_OF_PREFIX if req.path.startswith(prefix + "/")), "")
    if service == "identity" and req.method == "GET" and req.path.endswith("/v3/auth/tokens"):
        return  # a token may always be validated
    if any(r["method"] == req.method and r["service"] == service and path_matches(req.path, r["path"])
           for r in rules):
        return
    raise HTTPError(401, {"error": {"code": 401, "title": "Unauthorized",
                                    "message": "The request you have made requires authentication."}},
                    {"WWW-Authenticate": 'Keystone uri="/identity"'})


def register(router: Router, sb: Sandbox) -> None:
    def caller(req: Request) -> str:
        assert req.token is not None
        user_id = str(req.token["body"]["user"]["id"])
        if req.params["user"] != user_id:
            raise _error(403, "Forbidden", "You are not authorized to perform the requested action: "
                                           "Cannot create an application credential for another user.")
        return user_id

    def unrestricted_only(req: Request) -> None:
        """Keystone's `_check_unrestricted_application_credential` (create and delete)."""
        assert req.token is not None
        made_by = req.token["body"].get("application_credential")
        if made_by and made_by.get("restricted"):
            raise _error(403, "Forbidden", "You are not authorized to perform the requested action: Using method "
                                           "'application_credential' is not allowed for managing additional "
                                           "application credentials.")

    def create(req: Request) -> Response:
        user_id = caller(req)
        assert req.token is not None
        unrestricted_only(req)
        body = (req.body or {}).get("application_credential") or {}
        name = str(body.get("name") or "")
        if not name:
            raise _error(400, "Bad Request", "Invalid input for field 'name': None is not of type 'string'")
        rules = []
        for rule in body.get("access_rules") or []:
            if not isinstance(rule, dict) or set(rule) - {"id", "service", "method", "path"} or not str(
                    rule.get("path", "/")).startswith("/"):
                raise _error(400, "Bad Request", f"Invalid input for field 'access_rules': {rule!r}")
            rules.append({"id": rule.get("id") or uuid.uuid4().hex, "service": str(rule.get("service", "")),
                          "method": str(rule.get("method", "")), "path": str(rule.get("path", ""))})
        secret = str(body.get("secret") or secrets.token_urlsafe(48))
        with sb.state.lock:
            if any(r["name"] == name and r["user_id"] == user_id for r in _table(sb).values()):
                raise _error(409, "Conflict", "Conflict occurred attempting to store application_credential - "
                                              "Duplicate entry found with name " + name + ".")
            rec = {"id": uuid.uuid4().hex, "name": name, "description": body.get("description"),
                   "expires_at": body.get("expires_at"), "project_id": sb.state.data["project_id"],
                   "user_id": user_id, "roles": [{"id": uuid.uuid5(uuid.NAMESPACE_URL, "member").hex,
                                                  "name": "member", "domain_id": None}],
                   "unrestricted": bool(body.get("unrestricted", False)), "access_rules": rules or None,
                   "secret_sha256": _hash(secret), "created": now_iso()}
            _table(sb)[rec["id"]] = rec
            sb.state.touch()
        return Response(201, {"application_credential": {**_view(sb, rec), "secret": secret}})

    def listing(req: Request) -> Response:
        user_id = caller(req)
        name = req.arg("name")
        with sb.state.lock:
            found = [_view(sb, r) for r in _table(sb).values()
                     if r["user_id"] == user_id and (name is None or r["name"] == name)]
        return Response(200, {"application_credentials": found, "links": {"self": None, "next": None,
                                                                         "previous": None}})

    def one(req: Request) -> Response:
        user_id = caller(req)
        with sb.state.lock:
            rec = _table(sb).get(req.params["cred"])
            if rec is None or rec["user_id"] != user_id:
                raise _error(404, "Not Found", f"Could not find Application Credential: {req.params['cred']}.")
            if req.method == "DELETE":
                unrestricted_only(req)
                del _table(sb)[rec["id"]]
                sb.state.touch()
                return Response(204)
            return Response(200, {"application_credential": _view(sb, rec)})

    base = r"/identity/v3/users/(?P<user>[^/]+)/application_credentials"
    router.add("POST", base, create)
    router.add("GET", base, listing)
    router.add("GET", base + r"/(?P<cred>[^/]+)", one)
    router.add("DELETE", base + r"/(?P<cred>[^/]+)", one)
