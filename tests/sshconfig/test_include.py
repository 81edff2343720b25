"""`ssh-config --install` / `--uninstall`: one Include line, first in ~/.ssh/config, once, with a backup; a temp
HOME (the suite's isolation) stands in for the user's."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path
from typing import Any

from tui.core import sshinclude


def ssh_config() -> Path:
    return Path.home() / ".ssh" / "config"


def test_install_creates_a_private_file_when_missing() -> None:
    change = sshinclude.install()
    cfg = ssh_config()
    assert change.changed and change.backup is None
    assert cfg.read_text() == "Include ~/.ssh/cades-tui/*.config\n"
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600 and stat.S_IMODE(cfg.parent.stat().st_mode) == 0o700
    assert sshinclude.is_installed()


def test_install_puts_the_line_first_once_with_a_backup() -> None:
    cfg = ssh_config()
    cfg.parent.mkdir(mode=0o700)
    old = "Host *\n    ServerAliveInterval 60\n\nHost work\n    HostName work.example.org\n"
    cfg.write_text(old)
    cfg.chmod(0o644)
    change = sshinclude.install()
    assert change.changed
    assert cfg.read_text() == "Include ~/.ssh/cades-tui/*.config\n" + old
    assert (cfg.parent / "config.cades-tui-backup").read_text() == old
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o644  # the user's mode is kept
    mtime = cfg.stat().st_mtime_ns
    again = sshinclude.install()  # idempotent: nothing changes, not even the backup
    assert not again.changed and cfg.stat().st_mtime_ns == mtime
    assert (cfg.parent / "config.cades-tui-backup").read_text() == old
    assert cfg.read_text().count("Include ~/.ssh/cades-tui/") == 1


def test_a_copy_further_down_is_moved_to_the_top() -> None:
    cfg = ssh_config()
    cfg.parent.mkdir(mode=0o700)
    cfg.write_text("Host a\n    User b\nInclude ~/.ssh/cades-tui/*.config\n")
    assert sshinclude.install().changed
    assert cfg.read_text() == "Include ~/.ssh/cades-tui/*.config\nHost a\n    User b\n"


def test_uninstall_removes_just_that_line() -> None:
    cfg = ssh_config()
    cfg.parent.mkdir(mode=0o700)
    old = "# mine\nHost a\n    User b\n"
    cfg.write_text(old)
    sshinclude.install()
    change = sshinclude.uninstall()
    assert change.changed and cfg.read_text() == old
    assert not sshinclude.uninstall().changed and cfg.read_text() == old
    assert not sshinclude.is_installed()


def test_uninstall_without_a_file_changes_nothing() -> None:
    assert not sshinclude.uninstall().changed
    assert not ssh_config().exists()


def test_crlf_and_a_symlinked_config_are_kept(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "ssh_config"
    real.parent.mkdir()
    real.write_bytes(b"Host a\r\n    User b\r\n")
    cfg = ssh_config()
    cfg.parent.mkdir(mode=0o700)
    cfg.symlink_to(real)
    assert sshinclude.install().changed
    assert cfg.is_symlink()  # a dotfile manager's link is written through, not replaced
    assert real.read_bytes() == b"Include ~/.ssh/cades-tui/*.config\r\nHost a\r\n    User b\r\n"


def test_wsl_note_names_the_windows_side(tmp_path: Path, monkeypatch: object) -> None:
    line = sshinclude.include_line()
    note = sshinclude.wsl_note(line, distro="Ubuntu")
    assert note is not None and r"%USERPROFILE%\.ssh\config" in note and "/mnt/c/Users/" in note and line in note
    assert sshinclude.wsl_note(line, distro=None) is None or sshinclude.wsl_distro() is not None
    version = tmp_path / "version"
    version.write_text("Linux version 5.15.153.1-microsoft-standard-WSL2 (gcc)")
    import os

    if not os.environ.get("WSL_DISTRO_NAME"):
        assert sshinclude.wsl_distro(version) == ""
        version.write_text("Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)")
        assert sshinclude.wsl_distro(version) is None


def test_cli_uninstall_needs_no_cloud_and_errors_are_one_line(capsys: Any) -> None:
    from tui.__main__ import main

    assert main(["ssh-config", "--uninstall"]) == 0  # no cloud, no clouds.yaml: only local files
    out, err = capsys.readouterr()
    assert "has no `Include ~/.ssh/cades-tui/*.config` line; nothing changed" in out and not err
    sshinclude.install()
    generated = Path.home() / ".ssh" / "cades-tui" / "sandbox.config"
    generated.parent.mkdir(mode=0o700)
    generated.write_text("Host x\n")
    assert main(["ssh-config", "--uninstall"]) == 0
    out, _ = capsys.readouterr()
    assert "Took `Include ~/.ssh/cades-tui/*.config` out of" in out and "no longer follows" in out
    assert ssh_config().read_text() == "" and not generated.exists()

    shutil.rmtree(Path.home() / ".ssh")
    (Path.home() / ".ssh").write_text("not a folder")  # a file where the folder should be
    assert main(["ssh-config", "--uninstall"]) == 1
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "cades-tui: error:" in err and "Traceback" not in err
