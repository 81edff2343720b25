"""Fixtures shared by every test area, and the fast tier.

- The fast tier: a test whose module and fixtures (those defined under tests/, and the ones they use) start nothing
  — no sandbox, no SSH host, no subprocess (`tests._support.starts_something`) — and that is not marked `slow` is
  marked `fast` at collection. `pytest -m fast` runs it alone (tests/run.sh runs it first); `-m "not fast"` the rest.
- Every test runs with its own HOME and XDG config/data/state/cache dirs (under its tmp_path): nothing ever touches
  the real ~/.config, ~/.ssh etc., and parallel workers (pytest-xdist) never share one. uv's and pip's download
  caches stay where they were (they are safe to share, and a warm cache keeps PyPI installs quick).
- `client_key`, `ssh_host`, `connect`: a real OpenSSH sshd "VM" (SSHHost) per test module and an asyncssh
  connection factory for it. `client_key_file`: the same key as a 0600 file (+ its public line), for code that
  takes a key path. `new_vm()`: a fresh VM for one test (suites that kill, restart or reconfigure sshd). `gateway`: a
  jump host and the ~/.ssh/config block naming it.
- A test that leaves the module's `ssh_host` dead (a failed network-cut test) has it started again after it.
- `forwarder`: runs a test twice, once per tunnel data path — the OpenSSH hand-off (Linux with `ssh`) and the
  asyncssh forwarder forced (CADES_TUI_FORWARDER=asyncssh; the one macOS and Windows use). `tunnel_target`: the
  module's VM as an SSHTarget with `client_key_file`, what `Tunnel(openssh=...)` takes.
- `sandbox`: one real sandbox cloud per test session (HTTP on 127.0.0.1, servers are real SSH hosts), with short
  delays. `sandbox_env`: the environment that points openstacksdk / python-openstackclient at it.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._support import is_fast, running_sandbox

GCM = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
# The real download caches, fixed before any test moves HOME and XDG_CACHE_HOME.
_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
SHARED_CACHES = {"UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR") or str(_CACHE / "uv"),
                 "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR") or str(_CACHE / "pip")}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if is_fast(item):
            item.add_marker(pytest.mark.fast)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under `--dist loadscope` (tests/run.sh), every module of tests/realcloud goes to one worker: the real
    OpenStack services are a session fixture (~1 GB, minutes to start), started once, not once per worker."""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith("tests/realcloud/"):
                return "tests/realcloud"
            return super()._split_scope(nodeid)

    return Scheduling(config, log)


@pytest.fixture(autouse=True)
def _isolated_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "home").mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / "xdg" / var.lower()))
    for var, value in SHARED_CACHES.items():
        monkeypatch.setenv(var, value)
    for var in ("CADES_TUI_CONFIG", "OS_CLOUD", "OS_CLIENT_CONFIG_FILE", "CADES_TUI_SANDBOX_DIR",
                "CADES_TUI_FORWARDER"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(autouse=True)
def _module_vm_back_up(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests run in random order: a test that killed the module's VM (`ssh_host.kill()`, a network cut) and failed
    before starting it again must not fail the tests after it. The VM is started again (same port) if it is down."""
    host = request.getfixturevalue("ssh_host") if "ssh_host" in request.fixturenames else None
    yield
    if host is not None and not host.running:
        host.start()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    with running_sandbox(tmp_path_factory.mktemp("sandbox")) as sb:
        yield sb


@pytest.fixture
def sandbox_env(sandbox: object) -> dict[str, str]:
    return {**os.environ, "OS_CLIENT_CONFIG_FILE": str(sandbox.clouds_yaml), "OS_CLOUD": "sandbox"}  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def client_key() -> Any:
    import asyncssh

    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture(scope="module")
def ssh_host(tmp_path_factory: pytest.TempPathFactory, client_key: Any) -> Iterator[Any]:
    from tui.sandbox.sshhost import SSHHost

    host = SSHHost(tmp_path_factory.mktemp("vm"), [client_key.export_public_key().decode()])
    host.start()
    yield host
    host.stop()  # also ends every screen/tmux session and Jupyter left in this VM


@pytest.fixture(scope="module")
def client_key_file(tmp_path_factory: pytest.TempPathFactory, client_key: Any) -> tuple[Path, str]:
    """(private key path, public key line) of `client_key`."""
    path = tmp_path_factory.mktemp("client-key") / "id_ed25519"
    client_key.write_private_key(str(path))
    path.chmod(0o600)
    return path, client_key.export_public_key().decode().strip()


@pytest.fixture
def new_vm(tmp_path: Path, client_key_file: tuple[Path, str]) -> Iterator[Callable[..., Any]]:
    """`new_vm(name="vm")`: a fresh SSH host under tmp_path authorizing `client_key`; all stopped after the test."""
    from tui.sandbox.sshhost import SSHHost

    hosts: list[SSHHost] = []

    def make(name: str = "vm") -> SSHHost:
        host = SSHHost(tmp_path / name, [client_key_file[1]])
        hosts.append(host)
        host.start()
        return host

    yield make
    for host in hosts:
        host.stop()


@pytest.fixture
def gateway(new_vm: Callable[..., Any], client_key_file: tuple[Path, str], tmp_path: Path) -> tuple[str, Any]:
    """A jump host: (the ~/.ssh/config block `Host gateway` naming it, with its key and known host; its SSHHost)."""
    bastion = new_vm("bastion")
    known = tmp_path / "bastion_known_hosts"
    known.write_text(bastion.known_hosts_line() + "\n")
    return (f"Host gateway\n  HostName 127.0.0.1\n  Port {bastion.port}\n  User {bastion.user}\n"
            f"  IdentityFile {client_key_file[0]}\n  UserKnownHostsFile {known}\n", bastion)


@pytest.fixture(scope="module")
def connect(ssh_host: Any, client_key: Any) -> Callable[[], Awaitable[Any]]:
    """A fresh authenticated asyncssh connection per call (host key checked against the VM's real key)."""
    import asyncssh

    async def _connect() -> asyncssh.SSHClientConnection:
        return await asyncssh.connect(
            "127.0.0.1", ssh_host.port, username=ssh_host.user, client_keys=[client_key],
            known_hosts=asyncssh.import_known_hosts(ssh_host.known_hosts_line()),
            encryption_algs=GCM, config=[], agent_path=None, connect_timeout=5,
        )

    return _connect


@pytest.fixture(params=["openssh", "asyncssh"])
def forwarder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The tunnel data path this run forces (see the module's docstring)."""
    from tui.core.platform import FORWARDER_ENV

    if request.param == "openssh" and (shutil.which("ssh") is None or not sys.platform.startswith("linux")):
        pytest.skip("the OpenSSH hand-off needs Linux and the OpenSSH client")
    monkeypatch.setenv(FORWARDER_ENV, request.param)
    return str(request.param)


@pytest.fixture
def tunnel_target(ssh_host: Any, client_key_file: tuple[Path, str], tmp_path: Path) -> Any:
    """The module's VM as the SSHTarget a tunnel hands to OpenSSH (our key file, a private known_hosts)."""
    from tui.core.remote.connection import SSHTarget

    return SSHTarget(host="127.0.0.1", port=ssh_host.port, user=ssh_host.user, key_path=client_key_file[0],
                     known_hosts=tmp_path / "known_hosts", connect_timeout=5)
