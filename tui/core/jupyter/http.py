"""A minimal HTTP/1.1 client for Jupyter's REST API over any byte stream.

The stream comes from an `Opener`: a local TCP connection into a tunnel
(`tcp_opener("127.0.0.1", local_port)`) or an SSH direct-tcpip channel to the VM's loopback
(`ssh_opener(conn, "127.0.0.1", remote_port)`), so the same client checks a server with or without
a tunnel. One request per connection (`Connection: close`), JSON in and out, bounded time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import asyncssh

from tui.core.errors import Unreachable


class _Reader(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


class _Writer(Protocol):
    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...


Opener = Callable[[], Awaitable[tuple[_Reader, _Writer]]]

MAX_BODY = 16 * 1024 * 1024


class NoReply(Unreachable):
    """No HTTP response (connection refused, timeout, malformed reply)."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


def tcp_opener(host: str, port: int) -> Opener:
    async def open_() -> tuple[_Reader, _Writer]:
        return await asyncio.open_connection(host, port)

    return open_


def ssh_opener(conn: asyncssh.SSHClientConnection, host: str, port: int) -> Opener:
    async def open_() -> tuple[_Reader, _Writer]:
        reader, writer = await conn.open_connection(host, port, encoding=None)
        return reader, writer

    return open_


async def request(
    opener: Opener,
    method: str,
    path: str,
    *,
    host: str = "127.0.0.1",
    token: str | None = None,
    body: Any = None,
    timeout: float = 10.0,
) -> Reply:
    """Send one request; the token goes in the Authorization header, never the URL."""
    try:
        return await asyncio.wait_for(_request(opener, method, path, host, token, body), timeout)
    except (OSError, asyncssh.Error, asyncio.IncompleteReadError, ValueError) as exc:
        raise NoReply(f"{method} {path}: {exc or type(exc).__name__}") from exc
    except TimeoutError as exc:
        raise NoReply(f"{method} {path}: no answer within {timeout:g} s") from exc


async def _request(
    opener: Opener, method: str, path: str, host: str, token: str | None, body: Any
) -> Reply:
    payload = b"" if body is None else json.dumps(body).encode()
    headers = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close", "Accept: application/json"]
    if token:
        headers.append(f"Authorization: token {token}")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        headers += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    reader, writer = await opener()
    try:
        writer.write(("\r\n".join(headers) + "\r\n\r\n").encode() + payload)
        raw = await _read_all(reader)
    finally:
        writer.close()
    return parse_response(raw)


async def _read_all(reader: _Reader) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            raise ValueError("response too large")


def parse_response(raw: bytes) -> Reply:
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("incomplete HTTP response")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"not an HTTP response: {lines[0][:60]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        rest = _dechunk(rest)
    elif "content-length" in headers:
        rest = rest[: int(headers["content-length"])]
    return Reply(int(parts[1]), headers, rest)


def _dechunk(data: bytes) -> bytes:
    out: list[bytes] = []
    pos = 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(data[end + 2 : end + 2 + size])
        pos = end + 2 + size + 2
