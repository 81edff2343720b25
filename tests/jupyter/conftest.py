"""A real OpenSSH sshd "VM" (SSHHost) with screen, tmux and the project's Jupyter, reached with asyncssh."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

JUPYTER = str(Path(sys.executable).parent / "jupyter")  # the venv's, standing in for ~/jupyter-env


@pytest.fixture(scope="module")
def jupyter_cmd() -> str:
    return JUPYTER


