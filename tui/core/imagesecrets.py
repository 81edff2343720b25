"""Secrets off an instance's disk while it is snapshotted, and back after (blocking: called from `tui.core.images`).

What is taken: Jupyter's runtime files that hold its token or sign its cookies (`jpserver-*.json`, their
`-open.html`, the cookie secret) and the autostop credential (`credential.json`); the tokens in the Jupyter log are
masked in place (same length: the server keeps appending). They are read into memory first, then removed and the
disk synced, over a verified SSH connection (the instance's pinned or known host key, the app's key; never a
question) — the VM's side is `imagesecrets_vm.py`, run by python3. After the snapshot they are written back,
byte-identical with their mode and mtime, where nothing took their place. A clone starts without them: Jupyter
makes a new token and cookie secret at its first start there.

The SSH work runs on an event loop of the calling thread's own (the engine's loop may be busy or absent).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shlex
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.core.cloud.base import CloudError
from tui.core.errors import ManagerError, Unreachable
from tui.core.hints import command
from tui.core.paths import JUPYTER_LOGFILE

if TYPE_CHECKING:
    import asyncssh

    from tui.core.models import Instance
    from tui.core.remote.commands import CommandLog
    from tui.core.services import RemoteContext

Say = Callable[[str], None]
AUTOSTOP_CREDENTIAL = "~/.cades-tui/autostop/credential.json"
JUPYTER_FILES = ("{runtime}/jpserver-*.json", "{runtime}/jpserver-*-open.html", "{runtime}/nbserver-*.json",
                 "{runtime}/nbserver-*-open.html", "{runtime}/jupyter_cookie_secret",
                 "{runtime}/notebook_cookie_secret")
WHAT = "Jupyter's token files and the autostop credential"
STEP_TIMEOUT_S = 60.0
PUT_BACK_TRIES = 3


class SecretsUnreachable(CloudError, Unreachable):
    """The instance runs but its secrets could not be taken off over SSH: no image is made."""


class _NoLogin(SecretsUnreachable):
    """The app cannot log in (its key refused, the host key never seen): it never put secrets there."""


class SecretsNotRestored(CloudError, ManagerError):
    """Some secrets could not be written back: they are gone from the VM (said with what to do)."""


def _boot() -> str:
    from tui.core import imagesecrets_vm

    packed = base64.b64encode(zlib.compress(Path(imagesecrets_vm.__file__).read_bytes(), 9)).decode()
    return f"import base64,zlib;exec(compile(zlib.decompress(base64.b64decode('{packed}')),'cades-secrets','exec'))"


def vm_command(mode: str) -> str:
    """The shell command that runs the VM's side (every argument quoted)."""
    return f"python3 -S -c {shlex.quote(_boot())} {shlex.quote(mode)}"


@dataclass
class Held:
    """What was taken off one instance, in memory only (repr shows names, never contents)."""

    instance: Instance
    found: dict[str, Any] = field(repr=False)
    _remote: _Remote | None = field(default=None, repr=False)

    @property
    def files(self) -> list[str]:
        return [str(f["path"]) for f in self.found["files"]]

    @property
    def tokens(self) -> int:
        return sum(len(log["spans"]) for log in self.found["logs"])

    def __bool__(self) -> bool:
        return bool(self.files or self.tokens)

    def text(self) -> str:
        parts = [f"{len(self.files)} file{'s' if len(self.files) != 1 else ''}"] if self.files else []
        if self.tokens:
            parts.append(f"{self.tokens} token{'s' if self.tokens != 1 else ''} in the Jupyter log")
        return " and ".join(parts)

    def close(self) -> None:
        if self._remote is not None:
            self._remote.close()

    def put_back(self, say: Say, captured: bool) -> None:
        """Write everything back (retried over a new connection when the old one is gone); SecretsNotRestored
        when some could not be. `captured`: the cloud has its copy of the disk (else it may hold them)."""
        remote, name = self._remote, self.instance.name
        assert remote is not None
        try:
            result: dict[str, Any] | None = None
            last: Exception | None = None
            for attempt in range(PUT_BACK_TRIES):
                try:
                    result = remote.put(self.found)
                    break
                except (CloudError, TimeoutError) as exc:
                    last = exc
                    remote.drop()
                    time.sleep(1.0 + attempt)
            if result is None:
                raise SecretsNotRestored(f"could not put {WHAT} back on {name} ({last or 'timed out'}): "
                                         f"{', '.join(self.files)}",
                                         _lost_hint(name))
            failed = list(result["failed"])
            if failed:
                raise SecretsNotRestored(f"could not put back on {name}: {'; '.join(failed)}", _lost_hint(name))
            kept = f"; kept the newer {', '.join(result['differs'])}" if result["differs"] else ""
            say(f"Put back on {name}: {self.text()}, byte-identical{kept}")
            if not captured:
                say(f"The snapshot was not finished when they went back: the image may hold them — delete it "
                    f"(`{command('image', 'list')}` names it) unless you trust everyone it reaches")
        finally:
            remote.close()


def _lost_hint(name: str) -> str:
    return (f"a new Jupyter token: `{command('jupyter', 'stop', name)}` then `{command('jupyter', 'start', name)}`; "
            f"shelve autostop again: `{command('autostop', name, '--idle', '60m', '--action', 'shelve')}`")


class _Remote:
    """One verified connection on an event loop of this thread's own; reconnects after `drop`."""

    def __init__(self, target: Any, name: str, log: CommandLog | None) -> None:
        self.target, self.name, self.log = target, name, log
        self.loop = asyncio.new_event_loop()
        self.conn: asyncssh.SSHClientConnection | None = None
        self.pending: dict[str, Any] | None = None  # what the VM was told to remove ("go" sent)

    async def _connect(self) -> asyncssh.SSHClientConnection:
        from tui.core.remote.connection import AuthFailed, HostKeyUnknown, RemoteError, connect

        if self.conn is None:
            try:
                self.conn = await connect(self.target)
            except (AuthFailed, HostKeyUnknown) as exc:
                raise _NoLogin(str(exc)) from None
            except RemoteError as exc:
                raise SecretsUnreachable(f"{self.name}: {exc}") from None
        return self.conn

    def _record(self, what: str, code: int | None, t0: float, started: datetime) -> None:
        if self.log is not None:
            self.log.record(f"python3 -c <cades-tui's image secrets helper> {what}", code, time.monotonic() - t0,
                            started)

    def take(self, ask: dict[str, Any]) -> dict[str, Any]:
        return self.loop.run_until_complete(asyncio.wait_for(self._take(ask), STEP_TIMEOUT_S))

    async def _take(self, ask: dict[str, Any]) -> dict[str, Any]:
        import asyncssh

        conn = await self._connect()
        started, t0 = datetime.now(UTC), time.monotonic()
        try:
            async with conn.create_process(vm_command("take"), encoding="utf-8") as proc:
                proc.stdin.write(json.dumps(ask) + "\n")
                found = _json(await proc.stdout.readline(), self.name)
                if found["files"] or found["logs"]:
                    self.pending = found
                    proc.stdin.write("go\n")
                    _json(await proc.stdout.readline(), self.name)
                proc.stdin.write_eof()
                await proc.wait()
        except (OSError, asyncssh.Error) as exc:
            self._record("take", None, t0, started)
            raise SecretsUnreachable(f"{self.name}: the connection failed ({exc})") from None
        self._record("take", proc.exit_status, t0, started)
        return found

    def put(self, found: dict[str, Any]) -> dict[str, Any]:
        return self.loop.run_until_complete(asyncio.wait_for(self._put(found), STEP_TIMEOUT_S))

    async def _put(self, found: dict[str, Any]) -> dict[str, Any]:
        import asyncssh

        conn = await self._connect()
        started, t0 = datetime.now(UTC), time.monotonic()
        try:
            result = await conn.run(vm_command("put"), input=json.dumps(found) + "\n", encoding="utf-8")
        except (OSError, asyncssh.Error) as exc:
            self._record("put", None, t0, started)
            raise SecretsUnreachable(f"{self.name}: the connection failed ({exc})") from None
        self._record("put", result.exit_status, t0, started)
        return _json(str(result.stdout or ""), self.name)

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        conn, self.conn = self.conn, None
        try:
            if conn is not None:
                conn.close()
                with contextlib.suppress(Exception):  # best effort: the connection may be gone already
                    self.loop.run_until_complete(asyncio.wait_for(conn.wait_closed(), 5.0))
        finally:
            self.loop.close()


def _json(line: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise SecretsUnreachable(f"{name}: the image secrets helper answered {line.strip()[:120]!r} (is python3 "
                                 "on the VM's PATH?)")
    return value


class SecretsAside:
    """Takes an ACTIVE instance's secrets off its disk before a snapshot (`take`), for `Held.put_back` after.
    `prepare(ref)`: the instance's SSH context (blocking; `Services.prepare`)."""

    def __init__(self, prepare: Callable[[str], RemoteContext],
                 command_log: Callable[[Instance], CommandLog] | None = None) -> None:
        self.prepare = prepare
        self.command_log = command_log

    def take(self, inst: Instance, say: Say) -> Held:
        """Read, remove and sync; SecretsUnreachable (nothing removed) when the VM cannot be reached quietly."""
        try:
            ctx = self.prepare(inst.id)
        except CloudError as exc:
            raise SecretsUnreachable(f"{inst.name}: {exc}") from None
        remote = _Remote(ctx.target, inst.name, self.command_log(inst) if self.command_log else None)
        try:
            found = remote.take({"files": [*JUPYTER_FILES, AUTOSTOP_CREDENTIAL], "logs": [JUPYTER_LOGFILE]})
        except _NoLogin as exc:  # the app never logged in there with this key: none of its secrets are on it
            remote.close()
            say(f"Cannot log in to {inst.name} ({exc}): its disk is imaged as it is — {WHAT}, if any, are included")
            return Held(inst, {"files": [], "logs": []})
        except BaseException as exc:
            if remote.pending is not None:  # told to remove them, then cut: back at once (or said why not)
                Held(inst, remote.pending, remote).put_back(say, captured=True)
            else:
                remote.close()
            if isinstance(exc, SecretsUnreachable | TimeoutError):
                raise SecretsUnreachable(
                    f"cannot take {WHAT} off {inst.name} before the snapshot: {exc or 'timed out'}",
                    f"wait until it answers SSH, or stop it (`{command('stop', inst.name)}`) to image its disk "
                    "as it is, secrets included") from None
            raise
        held = Held(inst, found, remote)
        if held:
            say(f"Took {WHAT} off {inst.name}'s disk for the snapshot ({held.text()}); they go back once the "
                "cloud has its copy")
        return held
