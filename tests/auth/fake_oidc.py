"""FakeOIDCProvider: a stand-in OpenID Connect identity provider on 127.0.0.1 (an edge the tests cannot reach: a
real provider is a Keycloak or a university's SSO).

It does what keystoneauth's OIDC plugins and keystone's resource server (mod_auth_openidc) ask of one:
- `GET /.well-known/openid-configuration`: the discovery document;
- `POST /token`: the password grant (RFC 6749 §4.3) for a registered client (HTTP Basic) and user → an access token;
- `POST /introspect`: RFC 7662, for the resource server's own client → `{"active": true, "preferred_username": …}`.
Everything else: 404. Tokens live 5 minutes.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

TOKEN_LIFE_S = 300


class FakeOIDCProvider:
    def __init__(self, users: dict[str, str], clients: dict[str, str]) -> None:
        self.users = users  # username -> password
        self.clients = clients  # client_id -> client_secret (the app's, and keystone's for introspection)
        self.tokens: dict[str, tuple[str, float]] = {}  # access token -> (username, expires)
        self.requests: list[str] = []  # "POST /token" ... in order
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                provider.requests.append(f"GET {self.path}")
                if self.path == "/.well-known/openid-configuration":
                    self._send(200, provider.discovery())
                else:
                    self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:
                provider.requests.append(f"POST {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                client = provider.client(self.headers.get("Authorization", ""))
                if client is None:
                    self._send(401, {"error": "invalid_client"})
                elif self.path == "/token":
                    self._send(*provider.token(form))
                elif self.path == "/introspect":
                    self._send(200, provider.introspect(form.get("token", "")))
                else:
                    self._send(404, {"error": "not_found"})

            def _send(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fake-oidc", daemon=True)

    def start(self) -> FakeOIDCProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.url, "token_endpoint": f"{self.url}/token",
                "introspection_endpoint": f"{self.url}/introspect", "grant_types_supported": ["password"]}

    def client(self, header: str) -> str | None:
        if not header.startswith("Basic "):
            return None
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        return client_id if secrets.compare_digest(self.clients.get(client_id, "\0"), secret) else None

    def issue(self, username: str) -> str:
        token = secrets.token_urlsafe(32)
        self.tokens[token] = (username, time.time() + TOKEN_LIFE_S)
        return token

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        user, password = form.get("username", ""), form.get("password", "")
        if form.get("grant_type") != "password":
            return 400, {"error": "unsupported_grant_type"}
        if not secrets.compare_digest(self.users.get(user, "\0"), password):
            return 400, {"error": "invalid_grant"}
        return 200, {"access_token": self.issue(user), "token_type": "Bearer", "expires_in": TOKEN_LIFE_S,
                     "scope": form.get("scope", "openid")}

    def introspect(self, token: str) -> dict[str, Any]:
        found = self.tokens.get(token)
        if found is None or found[1] < time.time():
            return {"active": False}
        return {"active": True, "preferred_username": found[0], "sub": f"sub-{found[0]}", "exp": int(found[1])}
