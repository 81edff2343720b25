"""Fixtures for the setup pipeline: real sshd hosts, a shared (warm) package cache, a runner helper."""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tui.core.guide import SetupEvent, SetupRunner, SetupSpec, SSHExecutor
from tui.core.guide.runner import PipelineFinished
from tui.core.remote.commands import CommandLog
from tui.core.remote.connection import ConnectionPool, SSHTarget
from tui.sandbox.sshhost import SSHHost


@pytest.fixture(scope="session")
def pkg_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[str, str], ...]:
    """uv's and pip's download caches, kept in pytest's cache dir so reruns are warm (passed to the VM env);
    a per-session temp dir when pytest's cache is disabled (-p no:cacheprovider)."""
    cache = getattr(request.config, "cache", None)
    base = Path(cache.mkdir("remote-pkg-cache")) if cache is not None else tmp_path_factory.mktemp("pkg-cache")
    return (("UV_CACHE_DIR", str(base / "uv")), ("PIP_CACHE_DIR", str(base / "pip")))


@pytest.fixture(scope="session")
def uv_on_path(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[str, str], ...]:
    """A remote PATH with a uv on it (the "uv already installed" branch; skips venv + pip install uv)."""
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    bindir = tmp_path_factory.mktemp("uv-bin")
    (bindir / "uv").symlink_to(uv)
    return (("PATH", f"{bindir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),)


@pytest.fixture
def ssh_host(new_vm: Callable[..., SSHHost]) -> SSHHost:
    """A fresh VM per test: setup runs install into it, and some tests kill its sshd mid-run."""
    return new_vm()


@pytest.fixture
def target(ssh_host: SSHHost, client_key_file: tuple[Path, str], tmp_path: Path) -> SSHTarget:
    known = tmp_path / "app" / "known_hosts"
    known.parent.mkdir()
    known.write_text(ssh_host.known_hosts_line() + "\n")
    return SSHTarget("127.0.0.1", ssh_host.port, ssh_host.user, client_key_file[0], known)


@dataclass
class Rig:
    """One instance's pipeline plumbing: pool, command log, events seen."""

    target: SSHTarget
    log: CommandLog
    pool: ConnectionPool = field(default_factory=ConnectionPool)
    events: list[SetupEvent] = field(default_factory=list)

    def executor(self, settings: SetupSpec) -> SSHExecutor:
        return SSHExecutor(self.pool, "i-1", self.target, self.log, settings.env)

    async def setup(self, settings: SetupSpec, **kwargs: object) -> PipelineFinished:
        self.events.clear()
        runner = SetupRunner(settings, self.executor(settings), self.events.append, **kwargs)  # type: ignore[arg-type]
        return await runner.run()


@pytest.fixture
async def rig(target: SSHTarget, tmp_path: Path) -> AsyncIterator[Rig]:
    r = Rig(target, CommandLog.for_instance(tmp_path / "state", "i-1"))
    yield r
    await r.pool.close_all()
