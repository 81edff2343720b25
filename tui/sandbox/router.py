"""A small JSON router over http.server: a regex table, one Request in, one Response out.

Why not a web framework: the whole API is ~60 routes of JSON in, JSON out, served to one local client. The
stdlib costs nothing to import (`--demo` starts the sandbox in-process, behind the app's first frame), has no
event loop to share with the app's, and needs no new dependency; tornado, the one framework already installed
(through Jupyter), costs ~90 ms to import and an IOLoop thread, and werkzeug/starlette/bottle would be new
dependencies that buy routing we already have in 20 lines.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("tui.sandbox")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: Any
    params: dict[str, str] = field(default_factory=dict)  # named regex groups
    token: dict[str, Any] | None = None  # the validated token record, for authenticated routes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class HTTPError(Exception):
    """Raised by handlers; rendered as `body` with `status`."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


Handler = Callable[[Request], Response]
# A service's handler: the sandbox (typed loosely: this module knows nothing of it) and the request.
ServiceHandler = Callable[[Any, Request], Response]
# Called before an authenticated handler: validates the token (and may inject faults). Raises HTTPError.
Guard = Callable[[Request], None]


@dataclass(frozen=True)
class Route:
    """One row of a service's route table."""

    method: str
    pattern: str  # a regex matched against the whole path; named groups land in Request.params
    handler: ServiceHandler
    auth: bool = True


@dataclass
class _Compiled:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool


def mount(router: Router, sb: Any, routes: list[Route]) -> None:
    """Add a service's route table, each handler bound to the sandbox."""
    for r in routes:
        router.add(r.method, r.pattern, functools.partial(r.handler, sb), auth=r.auth)


class Router:
    def __init__(self, guard: Guard) -> None:
        self.routes: list[_Compiled] = []
        self.guard = guard

    def add(self, method: str, pattern: str, handler: Handler, *, auth: bool = True) -> None:
        self.routes.append(_Compiled(method, re.compile(pattern), handler, auth))

    def dispatch(self, req: Request) -> Response:
        allowed = False
        for route in self.routes:
            m = route.pattern.fullmatch(req.path)
            if not m:
                continue
            if route.method != req.method:
                allowed = True
                continue
            req.params = {k: v for k, v in m.groupdict().items() if v is not None}
            try:
                if route.auth:
                    self.guard(req)
                return route.handler(req)
            except HTTPError as e:
                return Response(e.status, e.body, e.headers)
        if allowed:
            return Response(
                405, {"error": {"code": 405, "message": "The method is not allowed for the requested URL."}}
            )
        log.warning("sandbox: no route for %s %s", req.method, req.path)
        return Response(404, {"error": {"code": 404, "message": f"No route for {req.method} {req.path}"}})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cades-sandbox/1"
    # Headers and body go out in two writes: with Nagle's algorithm the body waits for the client's delayed ACK,
    # 40 ms on every request on Linux — a stall no real cloud has. (48 ms -> 2 ms for a server list.)
    disable_nagle_algorithm = True
    router: Router  # set on the subclass made by serve()

    def _handle(self) -> None:
        split = urlsplit(self.path)
        path = split.path.rstrip("/") or "/"
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            self._send(Response(400, {"badRequest": {"code": 400, "message": "Malformed request body"}}))
            return
        req = Request(
            method=self.command,
            path=path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            resp = self.router.dispatch(req)
        except Exception:
            log.exception("sandbox: %s %s failed", self.command, self.path)
            resp = Response(500, {"computeFault": {"code": 500, "message": "Unexpected API Error."}})
        self._send(resp)

    def _send(self, resp: Response) -> None:
        payload = b""
        if resp.body is not None and resp.status != 204:
            payload = resp.body if isinstance(resp.body, bytes) else json.dumps(resp.body).encode()
        self.send_response(resp.status)
        headers = {"Content-Type": "application/json", "x-openstack-request-id": f"req-{uuid.uuid4()}"}
        headers.update(resp.headers)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("sandbox: " + format, *args)


class _Server(ThreadingHTTPServer):
    """Keeps track of open connections so that stopping really stops: clients hold keep-alive connections, and
    their handler threads would otherwise go on answering after shutdown()."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_sockets: set[Any] = set()
        self.sockets_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.sockets_lock:
            sockets, self.open_sockets = list(self.open_sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class HTTPService:
    """A ThreadingHTTPServer on 127.0.0.1 in a daemon thread."""

    def __init__(self, router: Router, port: int) -> None:
        handler = type("SandboxHandler", (_Handler,), {"router": router})
        self.server = _Server(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="sandbox-http", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.server.close_connections()
        self.thread.join(timeout=5)
