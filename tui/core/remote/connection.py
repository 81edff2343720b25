"""SSH connections to instances (asyncssh): host keys checked, keepalives on, errors in one family.

`connect(target)` makes one connection; `ConnectionPool` keeps one per instance and re-makes a dropped one.
`openssh_argv(target)` builds the equivalent OpenSSH command line for the interactive shell hand-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import asyncssh

from tui.core import paths
from tui.core.errors import CadesError, Refused, RetryLater, Unreachable
from tui.core.models import Instance
from tui.core.remote.hostkeys import (
    ConsoleHostKeys,
    HostKeyPolicy,
    HostKeyVerifier,
    KnownHosts,
    fingerprint,
    key_line,
)
from tui.core.tasks import spawn

# aes-gcm first: twice the tunnel throughput of asyncssh's default chacha20 here.
ENCRYPTION_ALGS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
)
KEEPALIVE_INTERVAL_S = 15.0
KEEPALIVE_COUNT_MAX = 3
CONNECT_TIMEOUT_S = 15.0


# -- errors -----------------------------------------------------------------------------------------------


class RemoteError(CadesError):
    """Anything that went wrong talking to an instance; `str()` is a message for the user."""


class SSHUnreachable(RemoteError, Unreachable):
    """No SSH connection could be made (refused, timed out, no route, handshake failed)."""


class AuthFailed(RemoteError, Refused):
    """The server refused our identity."""


class ConnectionDropped(RemoteError, RetryLater):
    """An established connection went away (e.g. during a command)."""


class HostKeyError(RemoteError, Refused):
    """The host key was not accepted."""


class HostKeyUnknown(HostKeyError):
    """Trust on first use: nothing is known about this host. Show `fingerprint`; `accept()` stores the key."""

    def __init__(self, host: str, port: int, key: str, store: KnownHosts) -> None:
        self.host = host
        self.port = port
        self.key = key  # "type base64"
        self.fingerprint = fingerprint(key)
        self.store = store
        super().__init__(
            f"The authenticity of host {host}:{port} cannot be established. "
            f"{key.split()[0]} key fingerprint is {self.fingerprint}. Accept it to continue."
        )

    def accept(self) -> None:
        """Trust the key from now on (written to the app's known_hosts)."""
        self.store.add(self.host, self.port, self.key)


class HostKeyChanged(HostKeyError):
    """The host presented a key other than the one we trust: refused, never silently accepted."""

    def __init__(self, host: str, port: int, old: tuple[str, ...], new: str, source: str) -> None:
        self.host = host
        self.port = port
        self.old_fingerprints = old
        self.new_fingerprint = new
        super().__init__(
            f"WARNING: the host key of {host}:{port} does not match {source}. "
            f"Expected {', '.join(old) or '(none)'}, got {new}. Someone could be intercepting the "
            "connection, or the instance was rebuilt. Connection refused; if the change is expected, "
            "remove the old key from the app's known_hosts."
        )


class CommandTimeout(RemoteError, RetryLater):
    """A remote command did not finish in time."""


# -- targets ----------------------------------------------------------------------------------------------


def _default_known_hosts() -> Path:
    return paths.data_dir() / "known_hosts"


@dataclass(frozen=True, slots=True)
class SSHTarget:
    """Where and how to connect. `jump` is `[user@]host[:port]` (ProxyJump, from the profile); `via` is a whole
    target to go through (a cluster worker with only a private address, reached through its head: the head's own
    key, pinned host keys and known_hosts apply to that hop)."""

    host: str
    port: int = 22
    user: str | None = None
    key_path: Path | None = None
    known_hosts: Path = field(default_factory=_default_known_hosts)
    jump: str | None = None
    use_ssh_config: bool = False
    ssh_config: Path | None = None  # with use_ssh_config: this file instead of ~/.ssh/config
    pinned: ConsoleHostKeys | None = None  # host keys from the instance's console log
    connect_timeout: float = CONNECT_TIMEOUT_S
    via: SSHTarget | None = None

    @classmethod
    def for_instance(cls, instance: Instance, user: str, **kwargs: Any) -> SSHTarget:
        """The target for an instance: its address and SSH port, the sandbox's user when it sets one."""
        return cls(host=instance.ip, port=instance.ssh_port, user=instance.ssh_user or user, **kwargs)

    def jump_target(self) -> SSHTarget | None:
        if not self.jump:
            return None
        user, _, hostport = self.jump.rpartition("@")
        host, port = hostport, 22
        if hostport.startswith("["):  # [v6addr]:port
            host, _, rest = hostport[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else 22
        elif hostport.count(":") == 1:
            host, _, p = hostport.partition(":")
            port = int(p)
        return replace(self, host=host, port=port, user=user or self.user, jump=None, pinned=None)

    def describe(self) -> str:
        user = f"{self.user}@" if self.user else ""
        hop = self.via.describe() if self.via is not None else self.jump
        via = f" via {hop}" if hop else ""
        return f"{user}{self.host}:{self.port}{via}"


# -- connecting -------------------------------------------------------------------------------------------


class _Client(asyncssh.SSHClient):
    def __init__(self, verifier: HostKeyVerifier, on_lost: Callable[[Exception | None], None] | None) -> None:
        self._verifier = verifier
        self._on_lost = on_lost
        self.established = False  # set once the login succeeded: only then can the connection be "lost"

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        return self._verifier.accepts(key)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._on_lost is not None and self.established:
            self._on_lost(exc)


async def connect(
    target: SSHTarget, *, on_lost: Callable[[Exception | None], None] | None = None
) -> asyncssh.SSHClientConnection:
    """Connect and authenticate; raises only `RemoteError` subclasses.

    `on_lost(exc)` is called when the connection later closes (exc None on a clean close) — never for a login
    that failed (the error is raised instead).
    """
    if target.key_path is not None and not target.key_path.is_file():
        raise AuthFailed(f"SSH private key file not found: {target.key_path} — restore it from a backup, or set "
                         f"ssh.key_path in the profile to another key {target.describe()} accepts")
    tunnel: asyncssh.SSHClientConnection | None = None
    jump = target.via or target.jump_target()
    if jump is not None:
        try:
            tunnel = await connect(jump)
        except (SSHUnreachable, AuthFailed) as exc:  # host key errors already name the jump host
            raise type(exc)(f"jump host {jump.describe()}: {exc}") from exc
    store = KnownHosts(target.known_hosts)
    verifier = HostKeyVerifier(store, target.host, target.port, target.pinned)
    clients: list[_Client] = []

    def new_client() -> _Client:
        clients.append(_Client(verifier, on_lost))
        return clients[-1]

    options: dict[str, Any] = {
        "known_hosts": (verifier.trusted_keys(), [], []),
        "client_factory": new_client,
        "keepalive_interval": KEEPALIVE_INTERVAL_S,
        "keepalive_count_max": KEEPALIVE_COUNT_MAX,
        "encryption_algs": list(ENCRYPTION_ALGS),
        "connect_timeout": target.connect_timeout,
        "config": _config_arg(target),
    }
    if not (target.use_ssh_config and target.port == 22):  # else the config's Port applies
        options["port"] = target.port
    if target.user:
        options["username"] = target.user
    if target.key_path is not None:
        options["client_keys"] = [str(target.key_path)]
    if tunnel is not None:
        options["tunnel"] = tunnel
    try:
        conn = await asyncssh.connect(target.host, **options)
    except asyncssh.HostKeyNotVerifiable as exc:
        _close_quietly(tunnel)
        raise _host_key_error(verifier, target, exc) from None
    except asyncssh.PermissionDenied as exc:
        _close_quietly(tunnel)
        key = f"the key {target.key_path}" if target.key_path else "the agent's and default keys"
        raise AuthFailed(
            f"{target.describe()} refused {key} for user {target.user or '(default)'}: {exc.reason}"
        ) from None
    except (OSError, asyncssh.Error) as exc:
        _close_quietly(tunnel)
        raise SSHUnreachable(f"cannot reach {target.describe()}: {_reason(exc)}") from None
    verifier.confirmed(conn.get_server_host_key())
    for client in clients:
        client.established = True
    if tunnel is not None:
        _close_with(conn, tunnel)
    return conn


def _config_arg(target: SSHTarget) -> Any:
    if not target.use_ssh_config:
        return []  # [] = no config file at all; () would load ~/.ssh/config
    return [str(target.ssh_config)] if target.ssh_config else ()


def _host_key_error(verifier: HostKeyVerifier, target: SSHTarget, exc: Exception) -> RemoteError:
    key = verifier.presented
    if key is None:  # e.g. no common host key algorithm with the pinned keys
        return HostKeyChanged(
            target.host, target.port, verifier.expected_fingerprints(), f"an unusable key ({exc})", "trusted keys"
        )
    if verifier.policy is HostKeyPolicy.TOFU:
        return HostKeyUnknown(target.host, target.port, key_line(key), verifier.store)
    source = (
        "the key the cloud console printed for this instance"
        if verifier.policy is HostKeyPolicy.PINNED
        else f"the key stored in {verifier.store.path}"
    )
    return HostKeyChanged(target.host, target.port, verifier.expected_fingerprints(), fingerprint(key), source)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, asyncssh.DisconnectError):
        return exc.reason
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _close_quietly(conn: asyncssh.SSHClientConnection | None) -> None:
    if conn is not None:
        conn.close()


def _close_with(conn: asyncssh.SSHClientConnection, tunnel: asyncssh.SSHClientConnection) -> None:
    """Close the jump host connection when `conn` closes."""

    async def watch() -> None:
        await conn.wait_closed()
        tunnel.close()

    spawn(watch(), name="closing the jump host connection with its connection", emit=None)


# -- the pool ---------------------------------------------------------------------------------------------

Connector = Callable[..., Awaitable[asyncssh.SSHClientConnection]]


class ConnectionPool:
    """One live connection per instance id; a dropped one is re-made on the next `get`.

    `on_lost(key, exc)` reports a connection that went away (exc None on a clean close we did not ask for).
    `forget(key)`: the instance is being deleted — its connection closed, no new one made and no loss reported
    (a poll's login racing the deletion would be cut when the server goes); `allow(key)` when the deletion failed.
    """

    def __init__(
        self,
        connector: Connector = connect,
        on_lost: Callable[[str, Exception | None], None] | None = None,
    ) -> None:
        self._connector = connector
        self._on_lost = on_lost
        self._conns: dict[str, asyncssh.SSHClientConnection] = {}
        self._targets: dict[str, SSHTarget] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._closing: set[str] = set()
        self._refused: dict[str, str] = {}  # key -> why no connection is made (see forget)

    def target(self, key: str) -> SSHTarget | None:
        return self._targets.get(key)

    def is_connected(self, key: str) -> bool:
        conn = self._conns.get(key)
        return conn is not None and not conn.is_closed()

    async def get(self, key: str, target: SSHTarget | None = None) -> asyncssh.SSHClientConnection:
        """The live connection for `key`, connecting (again) when needed. A new `target` replaces the old."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key in self._refused:
                raise RemoteError(f"no SSH connection: the instance is {self._refused[key]}")
            if target is not None and target != self._targets.get(key):
                self._targets[key] = target
                await self._drop(key)
            if self.is_connected(key):
                return self._conns[key]
            known = self._targets.get(key)
            if known is None:
                raise RemoteError(f"no SSH target known for {key}")
            conn = await self._connector(known, on_lost=lambda exc: self._lost(key, exc))
            self._conns[key] = conn
            return conn

    async def reconnect(
        self, key: str, timeout: float, target: SSHTarget | None = None, interval: float = 0.5
    ) -> asyncssh.SSHClientConnection:
        """Connect again (to `target` when given), retrying while the host is unreachable, until `timeout`
        seconds have passed. Host key and authentication errors are final and raised at once.
        """
        deadline = time.monotonic() + timeout
        await self.close(key)
        if target is not None:
            self._targets[key] = target
        while True:
            try:
                return await self.get(key)
            except (SSHUnreachable, ConnectionDropped):
                if time.monotonic() + interval >= deadline:
                    raise
                await asyncio.sleep(interval)
                interval = min(interval * 1.5, 5.0)

    async def close(self, key: str) -> None:
        async with self._locks.setdefault(key, asyncio.Lock()):
            await self._drop(key)

    async def forget(self, key: str, why: str = "being deleted") -> None:
        """Close `key`'s connection and make no other (see the class docstring)."""
        self._refused[key] = why
        await self.close(key)

    def allow(self, key: str) -> None:
        """Connections to `key` may be made again (its deletion failed)."""
        self._refused.pop(key, None)

    async def close_all(self) -> None:
        for key in list(self._conns):
            await self.close(key)

    async def _drop(self, key: str) -> None:
        conn = self._conns.pop(key, None)
        if conn is not None:
            self._closing.add(key)
            conn.close()
            with contextlib.suppress(Exception):
                await conn.wait_closed()
            self._closing.discard(key)

    def _lost(self, key: str, exc: Exception | None) -> None:
        if key in self._closing or key in self._refused:
            return
        if self._on_lost is not None:
            self._on_lost(key, exc)


# -- OpenSSH hand-off -------------------------------------------------------------------------------------


def openssh_argv(target: SSHTarget, command: str | None = None, *, tty: bool | None = None) -> list[str]:
    """`ssh` argv with the same identity and host keys as the app (strict checking, app known_hosts)."""
    argv = [
        "ssh",
        "-p",
        str(target.port),
        "-o",
        f"UserKnownHostsFile={target.known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "ServerAliveInterval=15",
        "-o",
        "ServerAliveCountMax=3",
    ]
    if not target.use_ssh_config:
        argv[1:1] = ["-F", os.devnull]  # no config file ("nul" on Windows)
    elif target.ssh_config is not None:
        argv[1:1] = ["-F", str(target.ssh_config)]
    if target.key_path is not None:
        argv += ["-i", str(target.key_path)]
    if target.via is not None:  # the hop with its own key and host keys, not just a -J name
        hop = [*openssh_argv(target.via, tty=False)[:-2], "-W", "%h:%p", "--", target.via.host]
        argv += ["-o", "ProxyCommand=" + shlex.join(hop)]
    elif target.jump:
        argv += ["-J", target.jump]
    if tty is True:
        argv.append("-t")
    elif tty is False:
        argv.append("-T")
    if target.user:
        argv += ["-l", target.user]
    argv += ["--", target.host]
    if command is not None:
        argv.append(command)
    return argv
