"""Keystone's federated sign-in with OpenID Connect (`/v3/OS-FEDERATION/identity_providers/{idp}/protocols/
{proto}/auth`).

On a real cloud Apache's mod_auth_openidc guards that URL: it checks the `Authorization: Bearer` access token with
the identity provider (RFC 7662 introspection) and hands the claims to keystone, whose mapping makes them a
federated user in a group with a role on a project; keystone answers with an unscoped token, which the client
trades for a project-scoped one (the `token` method, `tui.sandbox.identity`). The sandbox does the same, against the
provider named by `sb.auth_modes.oidc` (an `OIDCTrust`; none by default: the URL then answers 401).
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tui.sandbox.router import HTTPError, Request, Response, Router

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox

INTROSPECT_TIMEOUT_S = 5.0
FEDERATED_DOMAIN = {"id": "Federated", "name": "Federated"}


@dataclass(frozen=True)
class OIDCTrust:
    """The identity provider keystone trusts, and how the resource server (mod_auth_openidc) asks it about a token."""

    idp: str  # keystone's identity provider id
    protocol: str  # keystone's protocol id ("openid" on most clouds)
    introspection_url: str  # the provider's RFC 7662 endpoint
    client_id: str  # the resource server's own client, to authenticate the introspection
    client_secret: str
    user_claim: str = "preferred_username"  # the mapping's remote attribute that names the user


def introspect(trust: OIDCTrust, access_token: str) -> dict[str, Any]:
    """The provider's claims about an active token; 401 for an inactive one or a provider that cannot be asked."""
    from tui.sandbox.identity import unauthorized

    basic = base64.b64encode(f"{trust.client_id}:{trust.client_secret}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 (the configured provider's URL)
        trust.introspection_url, urllib.parse.urlencode({"token": access_token}).encode(),
        {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded",
         "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=INTROSPECT_TIMEOUT_S) as response:  # noqa: S310 (configured URL)
            claims: dict[str, Any] = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        raise unauthorized() from None
    if claims.get("active") is not True or not claims.get(trust.user_claim):
        raise unauthorized()
    return claims


def register(router: Router, sb: Sandbox) -> None:
    def auth(req: Request) -> Response:
        from tui.sandbox.identity import new_token, unauthorized

        trust: OIDCTrust | None = sb.auth_modes.oidc
        header = req.headers.get("authorization", "")
        if trust is None or (req.params["idp"], req.params["proto"]) != (trust.idp, trust.protocol):
            raise HTTPError(404, {"error": {"code": 404, "title": "Not Found",
                                            "message": f"Could not find Identity Provider: {req.params['idp']}."}})
        if not header.lower().startswith("bearer "):
            raise unauthorized()
        claims = introspect(trust, header[7:].strip())
        name = str(claims[trust.user_claim])
        user = {
            "id": hashlib.sha256(f"{trust.idp}:{name}".encode()).hexdigest()[:32],
            "name": name,
            "domain": FEDERATED_DOMAIN,
            "OS-FEDERATION": {"identity_provider": {"id": trust.idp}, "protocol": {"id": trust.protocol},
                              "groups": [{"id": "federated-users"}]},
        }
        token_id, token = new_token(sb, user, [trust.protocol], scoped=False)
        return Response(201, {"token": token}, {"X-Subject-Token": token_id})

    pattern = r"/identity/v3/OS-FEDERATION/identity_providers/(?P<idp>[^/]+)/protocols/(?P<proto>[^/]+)/auth"
    router.add("POST", pattern, auth, auth=False)
    router.add("GET", pattern, auth, auth=False)
