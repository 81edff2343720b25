"""Pure parsing: Jupyter log lines (as screen writes them), HTTP responses, the state file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tui.core.jupyter.http import parse_response
from tui.core.jupyter.logparse import clean_line, last_words, redact, scan, url_without_token
from tui.core.state import AppState, ServerRecord, TunnelRecord

TOKEN = "9a33a4d367bac645cae89120d6a6b83326e9f3bd373d5944"
# Captured from jupyter_server 2.21 in screen (colours, shift-in, CRLF), the requested port taken.
SCREEN_LOG = (
    "\x1b[32m[I 2026-11-25 22:43:51.264 ServerApp]\x1b[m jupyterlab | extension was successfully loaded.\r\n"
    f"\x1b[32m[I 2026-11-25 22:43:51.264 ServerApp]\x1b[m http://127.0.0.1:8889/lab?token={TOKEN}\r\n"
    "\x1b[32m[I 2026-11-25 22:43:51.265 ServerApp]\x1b[m The port 8889 is already in use, trying another port.\r\n"
    "\x1b[32m[I 2026-11-25 22:43:51.265 ServerApp]\x1b[m Jupyter Server 2.21.1 is running at:\x0f\r\n"
    f"\x1b[32m[I 2026-11-25 22:43:51.265 ServerApp]\x1b[m http://127.0.0.1:8890/lab?token={TOKEN}\r\n"
    "\x1b[35m[C 2026-11-25 22:43:51.268 ServerApp]\x1b[m \r\n"
    "    Or copy and paste one of these URLs:\r\n"
    f"        http://127.0.0.1:8890/lab?token={TOKEN}\r\n"
)


def _lines(text: str) -> list[str]:
    return [clean_line(x) for x in text.split("\n")]


def test_clean_line_strips_terminal_noise() -> None:
    assert clean_line("\x1b[32m[I x]\x1b[m hello\x0f\x0e\r") == "[I x] hello"
    assert clean_line("\x1b[?1049h\x1b(B\x1b=plain  \r") == "plain"


def test_scan_takes_the_port_after_the_move() -> None:
    found = scan(_lines(SCREEN_LOG))
    assert found is not None
    assert (found.port, found.path, found.token, found.ports_in_use) == (8890, "/lab", TOKEN, (8889,))
    assert found.url(port=18889) == f"http://127.0.0.1:18889/lab?token={TOKEN}"


def test_scan_waits_while_only_the_busy_port_was_announced() -> None:
    lines = _lines(SCREEN_LOG)[:3]  # URL for 8889, then "already in use": no trustworthy URL yet
    assert scan(lines) is None
    assert scan(["[I ServerApp] starting"]) is None


def test_scan_notebook_and_localhost_urls() -> None:
    found = scan([f"[I NotebookApp] http://localhost:9999/tree?token={TOKEN}"])
    assert found is not None and (found.port, found.path) == (9999, "/tree")


def test_tokens_are_redacted() -> None:
    line = f"http://127.0.0.1:8890/lab?token={TOKEN}"
    assert TOKEN not in redact(line) and redact(line).endswith("token=…")
    assert url_without_token(line + "&x=1") == "http://127.0.0.1:8890/lab?x=1"
    assert TOKEN not in last_words(_lines(SCREEN_LOG))


def test_parse_response_plain_and_chunked() -> None:
    plain = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nX-A: b\r\n\r\n{\"a\":1}trailing")
    assert plain.status == 200 and plain.json() == {"a": 1} and plain.headers["x-a"] == "b"
    chunked = parse_response(
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"b\"\r\n3\r\n:2}\r\n0\r\n\r\n"
    )
    assert chunked.status == 201 and chunked.json() == {"b": 2}
    with pytest.raises(ValueError):
        parse_response(b"SSH-2.0-OpenSSH\r\n\r\n")


def test_state_never_holds_a_token_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "st" / "state.json"
    state = AppState.load(path)
    assert state.servers == {} and state.tunnels == {}
    state.put(ServerRecord("vm1", "jupyter", "screen", 8890, url=f"http://127.0.0.1:8890/lab?token={TOKEN}",
                           auto_reopen=True))
    state.put_tunnel(TunnelRecord("vm1", "jupyter", 8889, remote_port=8890))
    text = path.read_text()
    assert TOKEN not in text and "token" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = AppState.load(path)
    assert again.servers["vm1"].url == "http://127.0.0.1:8890/lab"
    assert again.tunnel("vm1") == TunnelRecord("vm1", "jupyter", 8889, "127.0.0.1", 8890)
    again.put_tunnel(TunnelRecord("vm1", "jupyter", 8891, remote_port=8890))
    assert AppState.load(path).tunnel("vm1", "jupyter").local_port == 8891  # type: ignore[union-attr]
    again.forget("vm1")  # Jupyter stopped: its server and its Jupyter tunnel are forgotten
    assert AppState.load(path).servers == {} and AppState.load(path).tunnels == {}


def test_state_survives_garbage(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    assert AppState.load(path).servers == {}
    path.write_text(json.dumps({"servers": [{"instance": "a"}, {"instance": "b", "session": "j",
                                "multiplexer": "tmux", "remote_port": 1, "unknown": 2}]}))
    assert list(AppState.load(path).servers) == ["b"]
