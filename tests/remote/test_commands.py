"""Running and streaming commands on a real sshd; the command log and secret masking."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncssh
import pytest

from tui.core.remote.commands import CommandLog, mask_secrets, quote_args, run, stream
from tui.core.remote.connection import CommandTimeout, ConnectionDropped, SSHTarget, connect
from tui.core.remote.hostkeys import KnownHosts
from tui.sandbox.sshhost import SSHHost


@pytest.fixture
async def conn(ssh_host: SSHHost, target: SSHTarget) -> AsyncIterator[asyncssh.SSHClientConnection]:
    KnownHosts(target.known_hosts).add("127.0.0.1", ssh_host.port, ssh_host.host_public_key)
    c = await connect(target)
    yield c
    c.close()
    await c.wait_closed()


async def test_lines_stream_while_the_command_runs(conn: asyncssh.SSHClientConnection) -> None:
    batches: list[tuple[float, list[str]]] = []
    t0 = time.monotonic()
    result = await stream(
        conn,
        "echo one; echo two >&2; sleep 1; printf 'progress 1\\rprogress 2\\n'; printf 'no newline'; exit 3",
        lambda lines: batches.append((time.monotonic() - t0, lines)),
    )
    lines = [line for _, batch in batches for line in batch]
    assert lines == ["one", "two", "progress 2", "no newline"]
    assert batches[0][0] < 0.8 < result.seconds  # the first line arrived before the command ended
    assert result.exit_status == 3 and not result.ok
    assert result.tail[-1] == "no newline"


async def test_input_env_and_quoting(conn: asyncssh.SSHClientConnection, ssh_host: SSHHost) -> None:
    result = await run(conn, "cat; echo; echo $HOME", input="from stdin")
    assert result.output == f"from stdin\n{ssh_host.home}\n"
    hostile = "x; touch pwned; $(touch pwned2) `touch pwned3`"
    result = await run(conn, quote_args(["printf", "%s", hostile]))
    assert result.output == hostile
    assert not any((ssh_host.home / n).exists() for n in ("pwned", "pwned2", "pwned3"))


async def test_timeout_and_drop(conn: asyncssh.SSHClientConnection, ssh_host: SSHHost, tmp_path: Path) -> None:
    log = CommandLog(tmp_path / "log")
    with pytest.raises(CommandTimeout):
        await stream(conn, "sleep 5", timeout=0.3, log=log)
    loop = asyncio.get_running_loop()
    loop.call_later(0.3, ssh_host.kill)
    t0 = time.monotonic()
    with pytest.raises(ConnectionDropped, match="sleep 20"):
        await stream(conn, "echo started; sleep 20", log=log)
    assert time.monotonic() - t0 < 5
    entries = log.read()
    assert entries.count("exit=lost") == 2


def test_mask_secrets() -> None:
    cases = {
        "jupyter lab --ServerApp.token=abc123 --port 8889": "--ServerApp.token=********",
        "export JUPYTER_TOKEN=s3cr3t": "JUPYTER_TOKEN=********",
        "mysql --password hunter2 -u me": "--password ********",
        '{"token": "deadbeef", "port": 1}': '"token": "********"',
        "curl https://me:pa55@example.org/x?token=zzz&a=1": "https://me:********@example.org/x?token=********&a=1",
        "c.ServerApp.password = 'argon2:xyz'": "c.ServerApp.password = '********'",
    }
    for text, expected in cases.items():
        masked = mask_secrets(text)
        assert expected in masked, masked
        for secret in ("abc123", "s3cr3t", "hunter2", "deadbeef", "pa55", "zzz", "argon2:xyz"):
            assert secret not in masked
    assert mask_secrets("echo the-value here", secrets=["the-value"]) == "echo ******** here"
    assert mask_secrets("uv pip install jupyterlab --port 8889") == "uv pip install jupyterlab --port 8889"


def test_command_log_format_and_masking(tmp_path: Path) -> None:
    log = CommandLog.for_instance(tmp_path / "state", "../i-1 evil")
    assert log.path.parent == tmp_path / "state" / "commands" and "/" not in log.path.name.replace("..", "")
    log.add_secret("generated-tok")
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    log.record("jupyter lab --IdentityProvider.token=generated-tok\necho done", 0, 1.5, started)
    log.record("echo generated-tok", 2, 0.25, started)
    assert log.read() == (
        "2026-01-02T03:04:05Z exit=0 1.50s\n"
        "    jupyter lab --IdentityProvider.token=********\n"
        "    echo done\n"
        "2026-01-02T03:04:05Z exit=2 0.25s\n"
        "    echo ********\n"
    )
