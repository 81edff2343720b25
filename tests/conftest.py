"""Fixtures shared by every test area.

- Every test runs with its own XDG config/data/state dirs: nothing ever touches the real ~/.config, ~/.ssh etc.
- `sandbox`: one real sandbox cloud per test session (HTTP on 127.0.0.1, servers are real SSH hosts), with short
  delays. `sandbox_env`: the environment that points openstacksdk / python-openstackclient at it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / "xdg" / var.lower()))
    for var in ("CADES_TUI_CONFIG", "OS_CLOUD", "OS_CLIENT_CONFIG_FILE", "CADES_TUI_SANDBOX_DIR"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from tui.sandbox import Delays, Sandbox

    sb = Sandbox(tmp_path_factory.mktemp("sandbox"), delays=Delays.fast())
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def sandbox_env(sandbox: object) -> dict[str, str]:
    return {**os.environ, "OS_CLIENT_CONFIG_FILE": str(sandbox.clouds_yaml), "OS_CLOUD": "sandbox"}  # type: ignore[attr-defined]
