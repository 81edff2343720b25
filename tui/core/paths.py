"""Where the app keeps its files, per platform, and the Jupyter log on the instance. No I/O at import.

- Linux (and other POSIX systems): the XDG base directories — ~/.config/cades-tui, ~/.local/share/cades-tui,
  ~/.local/state/cades-tui, or $XDG_CONFIG_HOME, $XDG_DATA_HOME, $XDG_STATE_HOME when set.
- macOS: ~/Library/Application Support/cades-tui for all three (platformdirs; Apple's place for app files).
- Windows: %LOCALAPPDATA%\\cades-tui for all three (platformdirs; local, not roaming: private keys and known hosts
  stay on this machine).
An absolute XDG_* variable wins on every platform (that is how the tests isolate the app). The three kinds never
share a file name (config.yaml; keys/, known_hosts, instance_keys.json; state.json, logs, sandbox/), so one folder
holds them all where the platform has one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "cades-tui"

# On the instance ("~/" is the remote HOME): the Jupyter server's output, read back for its URL, token and port.
JUPYTER_LOGFILE = "~/.cades-tui/jupyter.log"


def _native_dir(kind: str) -> Path | None:
    """Where macOS and Windows keep this kind ("config", "data", "state") of app file; None elsewhere (XDG)."""
    if sys.platform == "darwin":
        from platformdirs.macos import MacOS

        return Path(str(getattr(MacOS(APP, appauthor=False), f"user_{kind}_dir")))
    if sys.platform == "win32":
        from platformdirs.windows import Windows

        return Path(str(getattr(Windows(APP, appauthor=False, roaming=False), f"user_{kind}_dir")))
    return None


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var)
    if value and os.path.isabs(value):
        return Path(value) / APP
    native = _native_dir(var.removeprefix("XDG_").removesuffix("_HOME").lower())
    return native if native is not None else Path.home() / default / APP


def config_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config")


def data_dir() -> Path:
    """Private keys, known_hosts: things that must survive."""
    return _xdg("XDG_DATA_HOME", ".local/share")


def state_dir() -> Path:
    """Running servers, tunnels, command logs, the demo sandbox."""
    return _xdg("XDG_STATE_HOME", ".local/state")


def ensure_private_dir(path: Path) -> Path:
    """`path` as a directory only its owner may enter: mode 0700 on POSIX; on Windows the app's folders lie under
    the user's profile, whose ACL already admits the user (and the system) alone."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if sys.platform != "win32":
        os.chmod(path, 0o700)
    return path



def ssh_dir() -> Path:
    """The user's OpenSSH folder: ~/.ssh (Windows: %USERPROFILE%\\.ssh, where OpenSSH for Windows looks too)."""
    return Path.home() / ".ssh"


def ssh_config_dir() -> Path:
    """Where `cades-tui ssh-config` writes its generated OpenSSH configs (one per cloud): ~/.ssh/cades-tui."""
    return ssh_dir() / APP


def public_key_files(ssh_dir: Path | None = None) -> list[Path]:
    """The user's OpenSSH public keys (~/.ssh/*.pub) that a launch can import as a key pair."""
    folder = ssh_dir or Path.home() / ".ssh"
    try:
        return sorted(p for p in folder.glob("*.pub") if p.is_file())
    except OSError:
        return []
