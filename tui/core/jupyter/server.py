"""Start, find, check, inspect and stop a Jupyter server in a detached screen/tmux session on a VM.

Start: `jupyter lab|notebook --no-browser --ip=127.0.0.1 --port=P --port-retries=N` in the workspace,
in a named session logging to a file flushed immediately — only when that session is not running, checked and
started under the VM's start lock (`tui.core.jupyter.startlock`): of two starts at once, one starts the server and
the other follows it to readiness, so both report the one server. The URL, token and port are read from
the log; the port is trusted only once an authenticated `GET /api/status` answers 200 on it (the
announced URL can name a busy port; another server on the same host answers 403 to our token).
Stop: Ctrl+C, then "y" + Enter ~0.5 s later, then a second Ctrl+C as a fallback, then verify that
the process and the session are gone (bounded), killing them as the last resort.
Reattach: the server's runtime file on the VM (jpserver-PID.json) gives port, token and root dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, cast

import asyncssh

from tui.core.config import DEFAULTS
from tui.core.errors import CadesError
from tui.core.jupyter import http, startlock
from tui.core.jupyter.logparse import ServerAnnouncement, clean_line, last_words, scan, url_without_token
from tui.core.jupyter.logtail import LogTail
from tui.core.models import KernelInfo
from tui.core.paths import JUPYTER_LOGFILE
from tui.core.remote.session import CTRL_C, Multiplexer, RemoteSession, SessionError, remote_path, run
from tui.core.tasks import spawn

if TYPE_CHECKING:
    from collections.abc import Callable

    from tui.core.config import Settings

Kind = Literal["lab", "notebook"]

RUNTIME_DIR = '"${JUPYTER_RUNTIME_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/jupyter/runtime}"'
_SEP = "\x1e"


class JupyterError(CadesError):
    """The server could not be started, found, queried or stopped."""


PORT_RETRIES = 50  # ports tried after a busy one (Jupyter's --port-retries)
START_TIMEOUT = 90.0  # seconds for a new server to answer
_KIND = cast(Kind, DEFAULTS.jupyter.app)


@dataclass(frozen=True, slots=True)
class JupyterSpec:
    """How to run Jupyter on a VM: a view of the profile (`tui.core.config`), built with `from_settings`.

    `command` is the jupyter executable (e.g. ~/jupyter-env/bin/jupyter). Built directly (tests, benchmarks), the
    profile's fields default to the profile's defaults (`DEFAULTS`), never to values of their own.
    """

    kind: Kind = _KIND
    command: str = DEFAULTS.setup.jupyter_command
    workspace: str = DEFAULTS.jupyter.workspace
    port: int = DEFAULTS.jupyter.port
    port_retries: int = PORT_RETRIES
    session: str = DEFAULTS.jupyter.session_name
    logfile: str = JUPYTER_LOGFILE
    extra_args: tuple[str, ...] = ()
    start_timeout: float = START_TIMEOUT

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        command: str = "",
        logfile: str = JUPYTER_LOGFILE,
        port_retries: int = PORT_RETRIES,
        start_timeout: float = START_TIMEOUT,
    ) -> JupyterSpec:
        """Jupyter as the profile asks for; `command` "" = the jupyter the setup installs (`<setup prefix>/bin`)."""
        j = settings.jupyter
        return cls(
            kind=cast(Kind, j.app),
            command=command or settings.setup.jupyter_command,
            workspace=j.workspace,
            port=j.port,
            port_retries=port_retries,
            session=j.session_name,
            logfile=logfile or JUPYTER_LOGFILE,
            start_timeout=start_timeout,
        )

    def command_line(self) -> str:
        """The shell command that runs the server (adds --allow-root only when the VM user is root)."""
        args = [
            self.kind,
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={int(self.port)}",
            f"--port-retries={int(self.port_retries)}",
            *self.extra_args,
        ]
        root = '$([ "$(id -u)" = 0 ] && echo --allow-root)'
        return " ".join([remote_path(self.command), *map(shlex.quote, args), root])


@dataclass(frozen=True, slots=True)
class ServerHandle:
    """A running server. The token lives here, in memory only (repr hides it)."""

    session: str
    multiplexer: Multiplexer
    port: int
    token: str = field(repr=False)
    path: str = "/lab"
    pid: int | None = None
    root_dir: str = ""

    def url(self, port: int | None = None, host: str = "127.0.0.1") -> str:
        """The tokenized URL on `host:port` (the tunnel's local end) — show it, never store it."""
        return ServerAnnouncement(self.port, self.path, self.token).url(host, port)

    def public_url(self, port: int | None = None, host: str = "127.0.0.1") -> str:
        """The URL without the token: safe for state files and logs."""
        return url_without_token(self.url(port, host))


@dataclass(frozen=True, slots=True)
class Activity:
    """What the server is doing; `last_activity` ignores UI polling (kernels and terminals only)."""

    kernels: tuple[KernelInfo, ...]
    terminals: int
    last_activity: datetime | None
    started: datetime | None

    @property
    def busy_kernels(self) -> tuple[KernelInfo, ...]:
        return tuple(k for k in self.kernels if k.busy)

    def idle_seconds(self, now: datetime | None = None) -> float | None:
        ref = self.last_activity or self.started
        if ref is None:
            return None
        return max(0.0, ((now or datetime.now(UTC)) - ref).total_seconds())


@dataclass(frozen=True, slots=True)
class StopResult:
    method: Literal["confirm", "double-interrupt", "killed", "not-running"]
    seconds: float


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class JupyterControl:
    """Jupyter on one VM, through one SSH connection."""

    def __init__(self, conn: asyncssh.SSHClientConnection, settings: JupyterSpec, session: RemoteSession):
        self.conn = conn
        self.settings = settings
        self.session = session

    @classmethod
    async def create(cls, conn: asyncssh.SSHClientConnection, settings: JupyterSpec) -> JupyterControl:
        """Pick screen when the VM has it, else tmux."""
        return cls(conn, settings, await RemoteSession.detect(conn))

    def opener(self, port: int) -> http.Opener:
        """HTTP straight to the VM's 127.0.0.1:port over an SSH channel (no tunnel needed)."""
        return http.ssh_opener(self.conn, "127.0.0.1", port)

    # -- start -----------------------------------------------------------------------------------------

    async def start(self, ready_opener: Callable[[int], http.Opener | None] | None = None) -> ServerHandle:
        """Start the server and return once it answers an authenticated request on its actual port — asked
        through `ready_opener(port)` when it gives an opener for that port (a tunnel opened while Jupyter
        booted), else straight over the SSH connection."""
        s = self.settings
        res = await run(self.conn, self.start_command())
        if res.exit_status != 0:
            raise JupyterError(f"{self.session.kind} failed to start {s.session!r}: "
                               f"{res.stderr.strip() or res.stdout.strip()}")
        age = startlock.already_started(res.stdout)
        if age is not None and not 0 <= age <= s.start_timeout:
            raise JupyterError(f"a {self.session.kind} session named {s.session!r} is already running, and its "
                               "Jupyter does not answer")
        # age not None: another start (a second terminal) won the VM's start lock a moment ago — its server is
        # followed to readiness like our own would be, so both report the same server
        lines: list[str] = []
        changed = asyncio.Event()
        tail = LogTail(self.conn, s.logfile, history=100_000, interval=0.02, redact_tokens=False)

        async def collect() -> None:
            async for batch in tail.batches():
                lines.extend(batch)
                changed.set()

        collector = asyncio.create_task(collect())
        try:
            return await self._await_ready(lines, changed, ready_opener)
        finally:
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collector
            # the remote tail ends on its own time (~30 ms): the server is ready now
            spawn(tail.close(), name="closing the log tail of a Jupyter start", emit=None)

    def start_command(self) -> str:
        """The remote command that starts the server's session, unless it runs (under the VM's start lock)."""
        s = self.settings
        return startlock.locked(self.session.kind, s.session,
                                self.session.start_command(s.session, s.command_line(), s.workspace, s.logfile))

    async def _await_ready(self, lines: list[str], changed: asyncio.Event,
                           ready_opener: Callable[[int], http.Opener | None] | None) -> ServerHandle:
        """Follow the log until the announced server answers; check the session about once a second."""
        s = self.settings
        start = time.monotonic()
        checked = start
        while True:
            found = scan(lines)
            if found is not None:
                opener = (ready_opener(found.port) if ready_opener else None) or self.opener(found.port)
                if await answers(opener, found.token):
                    return await self._describe(found)
            now = time.monotonic()
            if now - checked >= 1.0:
                checked = now
                if not await self.session.is_running(s.session):
                    raise JupyterError(f"Jupyter exited during start: {last_words(await self.read_log())}")
            if now - start > s.start_timeout:
                raise JupyterError(f"Jupyter did not answer within {s.start_timeout:g} s: {last_words(lines)}")
            changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), 0.1 if found else 0.5)

    async def read_log(self, max_bytes: int = 256 * 1024) -> list[str]:
        """The last `max_bytes` of the server log, cleaned (tokens NOT redacted: callers must)."""
        res = await run(self.conn, f"tail -c {int(max_bytes)} {remote_path(self.settings.logfile)} 2>/dev/null")
        return [clean_line(x) for x in res.stdout.splitlines()]

    async def _describe(self, found: ServerAnnouncement) -> ServerHandle:
        for info in await self.runtime_files():
            if info.get("port") == found.port and info.get("token") == found.token:
                return self._handle(info)
        return ServerHandle(self.settings.session, self.session.kind, found.port, found.token, found.path)

    def _handle(self, info: dict[str, Any]) -> ServerHandle:
        path = "/tree" if self.settings.kind == "notebook" else "/lab"
        base = str(info.get("base_url") or "/").rstrip("/")
        return ServerHandle(
            session=self.settings.session,
            multiplexer=self.session.kind,
            port=int(info["port"]),
            token=str(info.get("token", "")),
            path=base + path,
            pid=int(info["pid"]) if "pid" in info else None,
            root_dir=str(info.get("root_dir", "")),
        )

    # -- find (reattach) -------------------------------------------------------------------------------

    async def runtime_files(self) -> list[dict[str, Any]]:
        """The runtime records of Jupyter servers on the VM whose process is alive."""
        script = (
            f"for f in {RUNTIME_DIR}/jpserver-*.json; do [ -f \"$f\" ] || continue; "
            'p=${f##*jpserver-}; p=${p%.json}; kill -0 "$p" 2>/dev/null || continue; '
            f"printf '\\036'; cat \"$f\"; done"
        )
        res = await run(self.conn, script)
        out = []
        for chunk in res.stdout.split(_SEP):
            try:
                info = json.loads(chunk)
            except ValueError:
                continue
            if isinstance(info, dict) and "port" in info:
                out.append(info)
        return out

    async def find(self, port: int | None = None) -> ServerHandle | None:
        """Our running server, if any: the session must be alive; matched by `port` when given.

        The token is re-read from the VM, never from local state.
        """
        if not await self.session.is_running(self.settings.session):
            return None
        infos = await self.runtime_files()
        if port is not None:
            infos = [i for i in infos if i.get("port") == port] or infos
        lines = await self.read_log()
        announced = scan(lines)
        for info in infos:
            if announced is None or info.get("token") == announced.token:
                handle = self._handle(info)
                if await answers(self.opener(handle.port), handle.token):
                    return handle
        return None

    # -- inspect ---------------------------------------------------------------------------------------

    async def _get(self, handle: ServerHandle, path: str) -> Any:
        resp = await http.request(self.opener(handle.port), "GET", path, token=handle.token)
        if resp.status != 200:
            raise JupyterError(f"GET {path} answered {resp.status}")
        return resp.json()

    async def kernels(self, handle: ServerHandle) -> list[KernelInfo]:
        """Kernels with execution state and the notebook each serves."""
        try:
            kernels = await self._get(handle, "/api/kernels")
            sessions = await self._get(handle, "/api/sessions")
        except http.NoReply as exc:
            raise JupyterError(str(exc)) from exc
        paths = {s["kernel"]["id"]: str(s.get("path", "")) for s in sessions if s.get("kernel")}
        return [
            KernelInfo(
                id=str(k["id"]),
                name=str(k.get("name", "")),
                execution_state=str(k.get("execution_state", "")),
                last_activity=parse_time(k.get("last_activity")),
                connections=int(k.get("connections", 0)),
                path=paths.get(k["id"], ""),
            )
            for k in kernels
        ]

    async def activity(self, handle: ServerHandle) -> Activity:
        kernels = await self.kernels(handle)
        try:
            terminals = await self._get(handle, "/api/terminals")
        except JupyterError:
            terminals = []  # terminals extension disabled
        except http.NoReply as exc:
            raise JupyterError(str(exc)) from exc
        try:
            status = await self._get(handle, "/api/status")
        except http.NoReply as exc:
            raise JupyterError(str(exc)) from exc
        stamps = [k.last_activity for k in kernels] + [parse_time(t.get("last_activity")) for t in terminals]
        known = [s for s in stamps if s is not None]
        return Activity(tuple(kernels), len(terminals), max(known) if known else None,
                        parse_time(status.get("started")))

    # -- stop ------------------------------------------------------------------------------------------

    async def stop(self, handle: ServerHandle | None = None, timeout: float = 15.0) -> StopResult:
        """Stop the server as a person would at its terminal, then verify. JupyterError if it survives."""
        name = self.settings.session
        t0 = time.monotonic()
        pid = handle.pid if handle else None
        if not await self.session.is_running(name):
            if pid is not None and await self._alive(pid):
                await run(self.conn, _kill_if_jupyter(pid, "TERM"))
            return StopResult("not-running", 0.0)
        await self._type(name, CTRL_C)
        await asyncio.sleep(0.5)
        await self._type(name, "y\r")
        method: Literal["confirm", "double-interrupt", "killed"] = "confirm"
        if not await self.session.wait_gone(name, timeout=min(4.0, timeout / 3)):
            method = "double-interrupt"
            await self._type(name, CTRL_C)
            await asyncio.sleep(0.3)
            await self._type(name, CTRL_C)
            if not await self.session.wait_gone(name, timeout=min(6.0, timeout / 2)):
                method = "killed"
                await self.session.kill(name)
                if pid is not None:
                    await run(self.conn, _kill_if_jupyter(pid, "KILL"))
                await self.session.wait_gone(name, timeout=2.0)
        if await self.session.is_running(name):
            raise JupyterError(f"the {self.session.kind} session {name!r} is still running")
        if pid is not None and not await self._wait_dead(pid, 3.0):
            raise JupyterError(f"the Jupyter process {pid} is still running")
        return StopResult(method, time.monotonic() - t0)

    async def _type(self, name: str, text: str) -> None:
        """Type into the session; it may end at any moment (that is the goal), verified afterwards."""
        with contextlib.suppress(SessionError):
            await self.session.send_text(name, text)

    async def _alive(self, pid: int) -> bool:
        return (await run(self.conn, f"kill -0 {int(pid)} 2>/dev/null")).exit_status == 0

    async def _wait_dead(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while await self._alive(pid):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True


async def answers(opener: http.Opener, token: str, timeout: float = 5.0) -> bool:
    """True when `GET /api` is 200 and an authenticated `GET /api/status` is 200 (our server, ready). The token
    goes only to a Jupyter server: another program that took the port after a VM restart never sees it."""
    try:
        api = await http.request(opener, "GET", "/api", timeout=timeout)
        if api.status != 200:
            return False
        status = await http.request(opener, "GET", "/api/status", token=token, timeout=timeout)
    except http.NoReply:
        return False
    return status.status == 200


def _kill_if_jupyter(pid: int, signal: str) -> str:
    """Signal `pid` only while it is still a Jupyter process: a pid read from a runtime file or a record may belong
    to another program by now (the server ended long ago and the number was reused)."""
    return (f"case \"$(ps -o args= -p {int(pid)} 2>/dev/null)\" in *jupyter*) kill -{signal} {int(pid)} 2>/dev/null ;; "
            "esac; true")
