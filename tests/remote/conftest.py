"""Fixtures: a real OpenSSH sshd (SSHHost) in tmp_path and a client key for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from tui.remote.connection import SSHTarget
from tui.sandbox.sshhost import SSHHost


@pytest.fixture(scope="session")
def client_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(private key path, public key line) of an ed25519 client key."""
    d = tmp_path_factory.mktemp("client-key")
    key = asyncssh.generate_private_key("ssh-ed25519")
    path = d / "id_ed25519"
    key.write_private_key(str(path))
    path.chmod(0o600)
    return path, key.export_public_key().decode().strip()


@pytest.fixture
def ssh_host(tmp_path: Path, client_key: tuple[Path, str]) -> Iterator[SSHHost]:
    host = SSHHost(tmp_path / "vm", [client_key[1]])
    host.start()
    try:
        yield host
    finally:
        host.stop()


@pytest.fixture
def target(ssh_host: SSHHost, client_key: tuple[Path, str], tmp_path: Path) -> SSHTarget:
    """A target for `ssh_host` whose (empty) known_hosts lives in tmp_path."""
    return SSHTarget(
        host="127.0.0.1",
        port=ssh_host.port,
        user=ssh_host.user,
        key_path=client_key[0],
        known_hosts=tmp_path / "app" / "known_hosts",
    )
