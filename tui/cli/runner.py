"""One remote command on a fresh RemoteManager: resolve the instance, print its events, end cleanly on a signal.

Ctrl+C, SIGTERM and SIGHUP all end a command the same way: the running step is cancelled, the manager closes its
tunnels (their `ssh` masters included) and connections, one line on stderr says what was interrupted and what keeps
running, and the exit code is 128 + the signal (130 for Ctrl+C). On Windows, which has no SIGTERM or SIGHUP to
catch, Ctrl+C and Ctrl+Break (SIGBREAK, also sent when the console window is closed) do (tui.core.platform).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, SIGNAL_NAMES, Context, err, say
from tui.cli.printer import Printer

if TYPE_CHECKING:
    from tui.core.manager import RemoteManager
    from tui.core.services import RemoteContext

Body = Callable[["RemoteManager", "RemoteContext", Printer], Awaitable[int]]
Interrupted = Callable[[Printer], str]  # what was interrupted, and what keeps running: one sentence


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


def with_manager(args: argparse.Namespace, ctx: Context, body: Body, interrupted: Interrupted,
                 **options: Any) -> int:
    """Resolve the instance (blocking cloud calls), then run `body` on a fresh manager. Errors are printed once;
    a signal cancels `body`, then `interrupted(printer)` is said and 128 + signal returned."""
    from tui.core.services import Services

    services = Services(ctx.settings)
    rctx = services.prepare(ctx.cloud, args.name)
    check_private_key(rctx.target.key_path)
    printer = Printer(ctx, {rctx.instance.id: rctx.instance.name}, args.accept_host_key or "")
    if (unpinned := rctx.unpinned_event()) is not None:
        printer(unpinned)
    received: list[int] = []
    code = asyncio.run(_go(ctx, services, rctx, printer, body, received, options))
    if received:
        say(f"{interrupted(printer)} ({SIGNAL_NAMES.get(received[0], f'signal {received[0]}')})")
        return 128 + received[0]
    return code


async def _go(ctx: Context, services: Any, rctx: RemoteContext, printer: Printer, body: Body,
              received: list[int], options: dict[str, Any]) -> int:
    from tui.core.api import ManagerError
    from tui.core.manager import RemoteManager
    from tui.core.options import ManagerOptions
    from tui.core.state import AppState

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def stop(signum: int) -> None:
        if not received:  # a second signal while cleaning up changes nothing: the cleanup is short
            received.append(signum)
            task.cancel()

    undo = _add_handlers(loop, stop)
    manager = RemoteManager(ctx.settings, services, AppState.load(), printer, ManagerOptions(**options))
    try:
        return await body(manager, rctx, printer)
    except asyncio.CancelledError:
        if not received:
            raise
        task.uncancel()
        return EXIT_FAIL  # replaced by 128 + signal
    except ManagerError as exc:
        if not printer.bad_fingerprint:
            err(str(exc))
        return EXIT_USAGE if printer.bad_fingerprint else EXIT_FAIL
    finally:
        try:
            await manager.aclose()
        finally:
            undo()


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
