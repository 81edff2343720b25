"""A real OpenSSH sshd "VM" (SSHHost) with screen, tmux and the project's Jupyter, reached with asyncssh."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncssh
import pytest

JUPYTER = str(Path(sys.executable).parent / "jupyter")  # the venv's, standing in for ~/jupyter-env
GCM = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
Connect = Callable[[], Awaitable[asyncssh.SSHClientConnection]]


@pytest.fixture(scope="module")
def jupyter_cmd() -> str:
    return JUPYTER


