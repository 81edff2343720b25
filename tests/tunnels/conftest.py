"""A real OpenSSH sshd "VM" (SSHHost) and a TCP echo server behind it, for tunnel tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import asyncssh
import pytest

from tui.sandbox.sshhost import SSHHost

GCM = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
Connect = Callable[[], Awaitable[asyncssh.SSHClientConnection]]


@pytest.fixture(scope="module")
def client_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture(scope="module")
def ssh_host(tmp_path_factory: pytest.TempPathFactory, client_key: asyncssh.SSHKey) -> Iterator[SSHHost]:
    host = SSHHost(tmp_path_factory.mktemp("vm"), [client_key.export_public_key().decode()])
    host.start()
    yield host
    host.stop()


@pytest.fixture
def connect(ssh_host: SSHHost, client_key: asyncssh.SSHKey) -> Connect:
    """The connection factory a Tunnel gets: a fresh authenticated connection per call."""
    ssh_host.start()  # a previous test may have cut it

    async def _connect() -> asyncssh.SSHClientConnection:
        return await asyncssh.connect(
            "127.0.0.1",
            ssh_host.port,
            username=ssh_host.user,
            client_keys=[client_key],
            known_hosts=asyncssh.import_known_hosts(ssh_host.known_hosts_line()),
            encryption_algs=GCM,
            config=[],
            agent_path=None,
            connect_timeout=5,
        )

    return _connect


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    """A TCP echo server on 127.0.0.1 standing in for the service on the VM."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def _roundtrip(port: int, payload: bytes, timeout: float = 10.0) -> bytes:
    """Send `payload` through 127.0.0.1:port, half-close, read everything back."""

    async def _go() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
        data = await reader.read()
        writer.close()
        return data

    return await asyncio.wait_for(_go(), timeout)


@pytest.fixture
def roundtrip() -> Callable[[int, bytes], Awaitable[bytes]]:
    return _roundtrip
