"""Fixtures for signing in with every auth type: a sandbox cloud per test (no SSH hosts: the listings are what is
checked) with one server in it, and `cli`, which runs `cades-tui ...` in-process against a clouds.yaml. Helpers
the tests import are in `tests/auth/signin_support.py`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._support import running_sandbox
from tui.__main__ import main
from tui.core.cloud import authcache


@pytest.fixture
def sb(tmp_path: Path) -> Iterator[Any]:
    with running_sandbox(tmp_path / "sandbox", ssh_hosts=False) as sandbox:
        sandbox.seed_servers(1)
        yield sandbox


@pytest.fixture(autouse=True)
def _fresh_log_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The token cache says each kind of failure once per process: each test starts with nothing said."""
    monkeypatch.setattr(authcache, "_logged", set())


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """`cli(clouds_yaml, cloud, *args)`: `cades-tui --cloud CLOUD ARGS` in-process with OS_CLIENT_CONFIG_FILE;
    (exit code, stdout, stderr)."""

    def run(path: Path, cloud: str, *args: str) -> tuple[int, str, str]:
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
        code = main(["--cloud", cloud, *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run
