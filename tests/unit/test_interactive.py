"""The built-in SSH client's pure parts: the argv the app hands over to without `ssh` (same profile and cloud; the
running demo sandbox under --demo) and Windows' console modes for a session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tui.core.config import Settings
from tui.core.remote import interactive


def test_argv_keeps_the_profile_and_the_cloud(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "tui", "ssh", "ID"]
    assert interactive.builtin_client_argv(Settings(cloud="prod"), "ID") == [*base, "--cloud", "prod"]
    settings = Settings(cloud="prod", clouds_yaml="/etc/openstack/clouds.yaml", source=str(tmp_path / "p.yaml"))
    assert interactive.builtin_client_argv(settings, "ID", "uptime") == [
        *base, "--config", str(tmp_path / "p.yaml"), "--cloud", "prod", "--", "uptime"]


def test_argv_under_demo_names_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child finds the running sandbox by the demo dir's owner lock, so it must ask for the demo itself."""
    monkeypatch.setenv("CADES_TUI_SANDBOX_DIR", str(tmp_path / "sb"))
    demo = Settings().with_cloud("sandbox", str(tmp_path / "sb" / "clouds.yaml"))  # as tui.startup.prepare does
    assert interactive.builtin_client_argv(demo, "ID")[5:] == ["--demo"]
    other = Settings().with_cloud("sandbox", str(tmp_path / "elsewhere" / "clouds.yaml"))
    assert interactive.builtin_client_argv(other, "ID")[5:] == ["--cloud", "sandbox"]


def test_windows_console_modes() -> None:
    cooked_in = 0x0001 | 0x0002 | 0x0004 | 0x0010 | 0x0080  # processed, line, echo, window input, extended flags
    raw_in, vt_out = interactive.windows_modes(cooked_in, 0x0001 | 0x0002)
    assert raw_in == 0x0010 | 0x0080 | interactive.ENABLE_VIRTUAL_TERMINAL_INPUT  # Ctrl+C is a key, no echo
    assert vt_out == 0x0001 | 0x0002 | interactive.ENABLE_VIRTUAL_TERMINAL_PROCESSING \
        | interactive.DISABLE_NEWLINE_AUTO_RETURN
