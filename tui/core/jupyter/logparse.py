"""Reading a Jupyter server's terminal log: cleaning lines, finding the URL, token and actual port.

The log comes from screen/tmux: ANSI codes, shift-in/out (\\x0e, \\x0f) and CRLF. Jupyter prints the
token URL; when the requested port is taken it logs "The port N is already in use" and may move to
another one (--port-retries), so the last URL printed after the last such message is the candidate,
and only an authenticated request on that port proves it (see `tui.core.jupyter.server`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1b[=>]|[\x0e\x0f\r\x07]")
_URL = re.compile(r"https?://(?:127\.0\.0\.1|localhost|\[::1\]|[\w.-]+):(?P<port>\d+)(?P<path>/[^\s?]*)?"
                  r"\?token=(?P<token>[0-9A-Za-z_-]+)")
_IN_USE = re.compile(r"The port (?P<port>\d+) is already in use")
_TOKEN = re.compile(r"(token=)[0-9A-Za-z_-]+")


def clean_line(line: str) -> str:
    """A log line without terminal control sequences, CR, or trailing whitespace."""
    return _CONTROL.sub("", line).rstrip()


def redact(text: str) -> str:
    """`text` with every `token=VALUE` replaced by `token=…` (for display, logs and state)."""
    return _TOKEN.sub(r"\1…", text)


def url_without_token(url: str) -> str:
    """The URL with its `token` query parameter removed."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


@dataclass(frozen=True, slots=True)
class ServerAnnouncement:
    """What the log says about the server: where it claims to listen and its token."""

    port: int
    path: str
    token: str
    ports_in_use: tuple[int, ...] = ()

    def url(self, host: str = "127.0.0.1", port: int | None = None) -> str:
        """The tokenized URL, optionally for another host:port (the tunnel's local end)."""
        return f"http://{host}:{port or self.port}{self.path}?token={self.token}"


def scan(lines: list[str]) -> ServerAnnouncement | None:
    """The last URL announced after the last "already in use" message, if any (lines already cleaned)."""
    found: ServerAnnouncement | None = None
    in_use: list[int] = []
    for line in lines:
        m = _IN_USE.search(line)
        if m:
            in_use.append(int(m["port"]))
            found = None  # a URL printed before the move may name the busy port
            continue
        u = _URL.search(line)
        if u and int(u["port"]) not in in_use:
            found = ServerAnnouncement(int(u["port"]), u["path"] or "/", u["token"])
    if found is None:
        return None
    return ServerAnnouncement(found.port, found.path, found.token, tuple(in_use))


def last_words(lines: list[str], n: int = 3) -> str:
    """The last `n` non-empty lines, redacted: why a server that ended did so."""
    tail = [redact(x.strip()) for x in lines if x.strip()][-n:]
    return " | ".join(tail)
