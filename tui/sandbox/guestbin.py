"""The sandbox VMs' own commands: scripts in `ROOT/bin`, first on the PATH of every session of the VM (see sshhost's
session script) — `poweroff` (guestpower.py), `crontab` (cron.py)."""

from __future__ import annotations

import os
from pathlib import Path


def install(root: Path, name: str, script: str) -> None:
    """`ROOT/bin/NAME` holding `script`, executable by the VM (which runs as this same user)."""
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text(script)
    os.chmod(path, 0o700)
