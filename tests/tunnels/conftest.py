"""A real OpenSSH sshd "VM" (SSHHost) and a TCP echo server behind it, for tunnel tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tui.sandbox.sshhost import SSHHost


@pytest.fixture(autouse=True)
def _vm_up(ssh_host: SSHHost) -> None:
    """A previous test may have cut the VM's sshd: bring it back (a no-op when running)."""
    ssh_host.start()


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
