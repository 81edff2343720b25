"""The one `Include` line that puts cades-tui's generated ssh configs into ~/.ssh/config, and taking it out again.

The line goes FIRST: OpenSSH takes the first value it reads for an option, and VS Code's Remote-SSH reads an
Include only there. Installing twice changes nothing; each change keeps the file as it was in
`config.cades-tui-backup` beside it; a symlinked ~/.ssh/config (a dotfile manager's) is written through the link;
CRLF line ends (Windows) are kept. Windows: %USERPROFILE%\\.ssh\\config, which OpenSSH for Windows reads; under
WSL the Windows side has its own file, named by `wsl_note`.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tui.core import paths
from tui.core.hints import command
from tui.core.sshconfig import SUFFIX, config_word

BACKUP_NAME = "config.cades-tui-backup"


def include_line() -> str:
    """`Include ~/.ssh/cades-tui/*.config`: every cloud's generated file, one line for all."""
    return "Include " + config_word(paths.ssh_config_dir() / f"*{SUFFIX}", Path.home())


def user_config() -> Path:
    return paths.ssh_dir() / "config"


@dataclass(frozen=True, slots=True)
class IncludeChange:
    config: Path
    line: str
    changed: bool
    backup: Path | None = None


def is_installed(config: Path | None = None, line: str | None = None) -> bool:
    """The Include line is the first line of ~/.ssh/config."""
    lines = _read(config or user_config()).splitlines()
    return bool(lines) and lines[0].strip() == (line or include_line())


def install(config: Path | None = None, line: str | None = None) -> IncludeChange:
    """Make `line` the first line of ~/.ssh/config (created 0600 in a 0700 folder when missing), once."""
    config, line = config or user_config(), line or include_line()
    old = _read(config)
    lines = old.splitlines()
    if lines and lines[0].strip() == line:
        return IncludeChange(config, line, changed=False)
    kept = [x for x in lines if x.strip() != line]  # a copy further down would be read twice: moved to the top
    return _write(config, old, [line, *kept], line)


def uninstall(config: Path | None = None, line: str | None = None) -> IncludeChange:
    """Take `line` out of ~/.ssh/config (nothing else changes)."""
    config, line = config or user_config(), line or include_line()
    old = _read(config)
    lines = old.splitlines()
    kept = [x for x in lines if x.strip() != line]
    if kept == lines:
        return IncludeChange(config, line, changed=False)
    return _write(config, old, kept, line)


def _read(config: Path) -> str:
    try:
        with config.open(encoding="utf-8", newline="") as f:  # CRLF kept as it is
            return f.read()
    except FileNotFoundError:
        return ""


def _write(config: Path, old: str, lines: list[str], line: str) -> IncludeChange:
    target = config.resolve() if config.is_symlink() else config
    newline = "\r\n" if "\r\n" in old else "\n"
    backup = None
    if config.exists():
        backup = config.parent / BACKUP_NAME
        _atomic(backup, old, 0o600)
        mode = target.stat().st_mode & 0o777
    else:
        paths.ensure_private_dir(config.parent)
        mode = 0o600
    _atomic(target, "".join(x + newline for x in lines), mode)
    return IncludeChange(config, line, changed=True, backup=backup)


def _atomic(path: Path, text: str, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if sys.platform != "win32":
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def wsl_distro(proc_version: Path = Path("/proc/version")) -> str | None:
    """The WSL distribution this runs in ("" when WSL but unnamed), else None."""
    name = os.environ.get("WSL_DISTRO_NAME")
    if name:
        return name
    try:
        text = proc_version.read_text(errors="replace").lower()
    except OSError:
        return None
    return "" if "microsoft" in text or "wsl" in text else None


def wsl_note(line: str, distro: str | None = None) -> str | None:
    """Under WSL: where the Windows side's ssh config is (VS Code on Windows uses Windows' OpenSSH, which never
    reads this one) and the line that belongs there; None elsewhere."""
    distro = wsl_distro() if distro is None else distro
    if distro is None:
        return None
    return ("WSL: programs on the Windows side (VS Code on Windows) use Windows' OpenSSH, which reads "
            r"%USERPROFILE%\.ssh\config (from here: /mnt/c/Users/<you>/.ssh/config), not this one, and the key "
            "and known_hosts named here are WSL paths. For them, run "
            f"`{command('ssh-config', '--install')}` on the Windows side: it writes that file's first line, "
            f"`{line}`, with Windows paths.")
