"""A real OpenSSH sshd "VM" (SSHHost) with screen, tmux and the project's Jupyter, reached with asyncssh."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import asyncssh
import pytest

from tui.sandbox.sshhost import SSHHost

JUPYTER = str(Path(sys.executable).parent / "jupyter")  # the venv's, standing in for ~/jupyter-env
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
    host.stop()  # also ends every screen/tmux session and Jupyter left in this VM


@pytest.fixture(scope="module")
def jupyter_cmd() -> str:
    return JUPYTER


@pytest.fixture(scope="module")
def connect(ssh_host: SSHHost, client_key: asyncssh.SSHKey) -> Connect:
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
