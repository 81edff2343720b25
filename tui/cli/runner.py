"""The one way a CLI command reaches the core: `with_engine` builds a `CoreEngine` (the same `tui.core.api.Engine` the
app drives) with a `Printer` of its events, runs the command's body on it, and closes its connections and tunnels.

Ctrl+C, SIGTERM and SIGHUP all end an async body the same way: the running step is cancelled, the engine closes its
tunnels (their `ssh` masters included) and connections, one line on stderr says what was interrupted and what keeps
running, and the exit code is 128 + the signal (130 for Ctrl+C). On Windows, which has no SIGTERM or SIGHUP to
catch, Ctrl+C and Ctrl+Break (SIGBREAK, also sent when the console window is closed) do (tui.core.platform).
A plain (blocking) body is ended by Ctrl+C as any command is (`tui.cli.dispatch`: exit 130).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tui.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, SIGNAL_NAMES, Context, err, say
from tui.cli.printer import Printer

if TYPE_CHECKING:
    from tui.core.api import Engine, Login
    from tui.core.events import Emit
    from tui.core.models import Instance

AsyncBody = Callable[["Engine", Printer], Awaitable[int]]
PlainBody = Callable[["Engine", Printer], int]
Handler = Callable[[argparse.Namespace, Context], int]
Interrupted = Callable[[Printer], str]  # what was interrupted, and what keeps running: one sentence


def with_engine(args: argparse.Namespace, ctx: Context, body: AsyncBody | PlainBody,
                interrupted: str | Interrupted = "", *, listen: Emit | None = None, **options: Any) -> int:
    """Run `body(engine, printer)` on a fresh engine (`options`: `tui.core.options.ManagerOptions` fields) and
    close it. The core's events go to the printer (to `listen` instead, when given). An operation's failure
    (`ManagerError`) is printed once, exit 1 — exit 2 when the host key was not the one given on the command line;
    other errors reach `tui.cli.dispatch` (one line, exit 1, or 2 for bad input). An async body ends on a signal:
    then `interrupted` is said and 128 + signal returned."""
    printer = Printer(ctx, _Names(), getattr(args, "accept_host_key", "") or "")
    engine = _build(ctx, listen or printer, options)
    cast(_Names, printer.names).engine = engine
    if not inspect.iscoroutinefunction(body):
        try:
            return _code(printer, cast(PlainBody, body)(engine, printer))
        finally:
            asyncio.run(engine.aclose())
    received: list[int] = []
    code = asyncio.run(_go(engine, printer, cast(AsyncBody, body), received))
    if received:
        said = interrupted(printer) if callable(interrupted) else interrupted
        say(f"{said} ({SIGNAL_NAMES.get(received[0], f'signal {received[0]}')})")
        return 128 + received[0]
    return _code(printer, code)


def engine_command(fn: Callable[[argparse.Namespace, Context, Engine], int]) -> Handler:
    """A command of blocking engine calls (listings, server actions): `fn(args, ctx, engine)` run by `with_engine`."""

    def handler(args: argparse.Namespace, ctx: Context) -> int:
        return with_engine(args, ctx, lambda engine, _printer: fn(args, ctx, engine))

    handler.__doc__, handler.__name__ = fn.__doc__, fn.__name__
    return handler


def _build(ctx: Context, emit: Emit, options: dict[str, Any]) -> Engine:
    from tui.core.engine import CoreEngine
    from tui.core.options import ManagerOptions

    return CoreEngine(ctx.settings, ctx.cloud, emit, options=ManagerOptions(**options))


def _code(printer: Printer, code: int) -> int:
    return EXIT_USAGE if printer.bad_fingerprint else code


async def instance(engine: Engine, printer: Printer, name_or_id: str) -> tuple[Instance, Login]:
    """The instance to work on over SSH and how it is reached (its host keys pinned or why not, said by the
    printer), its private key checked first (a key others can read: one line, exit 2)."""
    inst = await asyncio.to_thread(engine.get_instance, name_or_id)
    printer.names[inst.id] = inst.name
    login = await engine.login(inst)
    check_private_key(login.key_path)
    return inst, login


def check_private_key(path: Path | None) -> None:
    """OpenSSH refuses a private key others can read (and prints a raw warning, exit 255): say so first."""
    from tui.core import platform
    from tui.core.cloud.base import InvalidInput

    if path is None:
        return
    try:
        with path.open("rb") as fh:
            head = fh.read(64)
    except OSError:
        return  # missing or unreadable: the connection names it
    if head.startswith((b"ssh-", b"ecdsa-", b"sk-")):
        raise InvalidInput(f"{path} is a public key: SSH logs in with the private one",
                           f"give {path.with_suffix('') if path.suffix == '.pub' else 'the private key file'} "
                           "(ssh.key_path in the profile)")
    if b"PRIVATE KEY" not in head and not head.startswith(b"PuTTY-User-Key-File"):
        raise InvalidInput(f"{path} is not an SSH private key (no '-----BEGIN … PRIVATE KEY-----' line)",
                           "give a private key file like ~/.ssh/id_ed25519 (ssh.key_path in the profile)")
    problem = platform.private_key_problem(path)
    if problem is not None:
        raise InvalidInput(problem, f"run: {platform.fix_private_key_hint(path)}")


async def _go(engine: Engine, printer: Printer, body: AsyncBody, received: list[int]) -> int:
    from tui.core.errors import ManagerError

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def stop(signum: int) -> None:
        if not received:  # a second signal while cleaning up changes nothing: the cleanup is short
            received.append(signum)
            task.cancel()

    undo = _add_handlers(loop, stop)
    try:
        return await body(engine, printer)
    except asyncio.CancelledError:
        if not received:
            raise
        task.uncancel()
        return EXIT_FAIL  # replaced by 128 + signal
    except ManagerError as exc:
        if not printer.bad_fingerprint:
            err(str(exc))
        return EXIT_FAIL
    finally:
        try:
            await engine.aclose()
        finally:
            undo()


class _Names(dict[str, str]):
    """Instance id -> name for the printer, looked up in the cloud the first time an id is seen."""

    engine: Engine | None = None

    def get(self, key: str, default: Any = None) -> Any:
        if key not in self:
            try:
                assert self.engine is not None
                self[key] = self.engine.get_instance(key).name
            except Exception:  # gone, or the cloud is away: the id will do
                self[key] = key
        return self[key]


def _add_handlers(loop: asyncio.AbstractEventLoop, stop: Callable[[int], None]) -> Callable[[], None]:
    """`stop(signum)` on each of this platform's stop signals; returns the undo."""
    from tui.core import platform

    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signals reach the main thread only (tests may run a command elsewhere)
    return platform.on_stop_signals(loop, stop)


async def forever() -> int:
    """Until a signal ends the command."""
    await asyncio.Event().wait()
    return EXIT_OK  # pragma: no cover - never set


async def ask(prompt: str) -> str:
    """`input(prompt)` without blocking the event loop, on a daemon thread: a signal still ends the command
    (a thread of the default executor would keep the process waiting for the answer)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def read() -> None:
        try:
            answer = input(prompt)
        except (EOFError, OSError):
            answer = ""
        def settle() -> None:
            if not future.done():
                future.set_result(answer)

        with contextlib.suppress(RuntimeError):  # the command ended meanwhile: its loop is closed
            loop.call_soon_threadsafe(settle)

    threading.Thread(target=read, daemon=True).start()
    return await future
