"""Fixtures: a fresh real OpenSSH sshd (SSHHost) per test — these tests kill and restart it — and a target."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tui.core.remote.connection import SSHTarget
from tui.sandbox.sshhost import SSHHost


@pytest.fixture
def ssh_host(new_vm: Callable[..., SSHHost]) -> SSHHost:
    return new_vm()


@pytest.fixture
def target(ssh_host: SSHHost, client_key_file: tuple[Path, str], tmp_path: Path) -> SSHTarget:
    """A target for `ssh_host` whose (empty) known_hosts lives in tmp_path."""
    return SSHTarget(
        host="127.0.0.1",
        port=ssh_host.port,
        user=ssh_host.user,
        key_path=client_key_file[0],
        known_hosts=tmp_path / "app" / "known_hosts",
    )
