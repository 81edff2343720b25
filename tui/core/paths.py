"""Where the app keeps its files: XDG base directories here, the Jupyter log on the instance. No I/O at import."""

from __future__ import annotations

import os
from pathlib import Path

APP = "cades-tui"

# On the instance ("~/" is the remote HOME): the Jupyter server's output, read back for its URL, token and port.
JUPYTER_LOGFILE = "~/.cades-tui/jupyter.log"


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var)
    base = Path(value) if value and os.path.isabs(value) else Path.home() / default
    return base / APP


def config_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config")


def data_dir() -> Path:
    """Private keys, known_hosts: things that must survive."""
    return _xdg("XDG_DATA_HOME", ".local/share")


def state_dir() -> Path:
    """Running servers, tunnels, command logs, the demo sandbox."""
    return _xdg("XDG_STATE_HOME", ".local/state")


def ensure_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def public_key_files(ssh_dir: Path | None = None) -> list[Path]:
    """The user's OpenSSH public keys (~/.ssh/*.pub) that a launch can import as a key pair."""
    folder = ssh_dir or Path.home() / ".ssh"
    try:
        return sorted(p for p in folder.glob("*.pub") if p.is_file())
    except OSError:
        return []
