"""Headless Jupyter / tunnel commands on the same `RemoteManager` as the app.

    cades-tui jupyter start|stop|logs NAME      cades-tui tunnel NAME      cades-tui open NAME      cades-tui status

Imports stay light at module level (argparse only): `cades-tui --help` must not load asyncssh or openstacksdk.
A tunnel made here lives as long as the command runs (`tunnel` and `open` stay in the foreground).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui.cli.cloud import Context
    from tui.core.manager import ManagerEvent, RemoteManager
    from tui.core.services import RemoteContext

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
MASK = "********"
FOREGROUND_NOTE = "The tunnel serves while this command runs; Ctrl+C closes it (Jupyter keeps running on the VM)."


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register `setup`, `ssh`, `jupyter`, `tunnel`, `open` and `status` on the top-level subparsers."""

    def cmd(parent: Any, name: str, help_: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_, description=help_, parents=[common])
        return p

    def remote(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("name", help="instance name or id")
        p.add_argument("--accept-host-key", metavar="SHA256:...", default="",
                       help="trust this host key fingerprint when the console log does not pin it (scripts)")
        return p

    se = remote(cmd(sub, "setup", "install Python + Jupyter on an instance (the guide's steps 2-3), every line shown"))
    se.add_argument("--dry-run", action="store_true", help="print the exact commands instead of running them")
    se.add_argument("--format-empty-volume", action="store_true",
                    help="format an attached, empty data volume without asking")
    sh = remote(cmd(sub, "ssh", "a shell on an instance (same key and host keys as the app), or run COMMAND"))
    sh.add_argument("remote_command", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                    help="run COMMAND instead of a shell and return its exit code")

    ju = cmd(sub, "jupyter", "start, stop or read the log of the Jupyter server on an instance")
    jsub = ju.add_subparsers(dest="jupyter_command", metavar="ACTION", required=True)
    js = remote(cmd(jsub, "start", "start Jupyter in a detached screen session and check it answers"))
    js.add_argument("--local-port", type=int, default=None, metavar="P", help="local port for the check's tunnel")
    jx = remote(cmd(jsub, "stop", "stop Jupyter (refuses while kernels are busy unless --force)"))
    jx.add_argument("--force", action="store_true", help="stop even when kernels are busy")
    jl = remote(cmd(jsub, "logs", "print the Jupyter server log (tokens hidden)"))
    jl.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl+C")
    jl.add_argument("-n", "--lines", type=int, default=200, help="how many past lines (default 200)")

    tu = remote(cmd(sub, "tunnel", "forward 127.0.0.1:PORT to the instance's Jupyter, in the foreground"))
    tu.add_argument("--local-port", type=int, default=None, metavar="P",
                    help="exactly this local port (default: the profile's when free, else any free one)")
    op = remote(cmd(sub, "open", "open Jupyter in the browser through a tunnel (stays in the foreground)"))
    op.add_argument("--local-port", type=int, default=None, metavar="P")
    op.add_argument("--no-browser", action="store_true", help="only print (and copy) the URL")

    st = cmd(sub, "status", "every instance with its Jupyter server, URL and tunnels")
    st.add_argument("--json", action="store_true", help="print JSON")
    st.add_argument("--show-token", action="store_true", help="show Jupyter's token in URLs (masked otherwise)")


# -- shared plumbing ----------------------------------------------------------------------------------------


def osc52(text: str) -> str:
    """The escape sequence that asks the terminal to copy `text` to the clipboard."""
    import base64

    return f"\x1b]52;c;{base64.b64encode(text.encode()).decode()}\x07"


def masked(url: str) -> str:
    """`url` (without token) with a masked token parameter."""
    return f"{url}{'&' if '?' in url else '?'}token={MASK}" if url else ""


class Printer:
    """Turns manager events into lines; answers host key questions like `cades-tui ssh` does."""

    def __init__(self, ctx: Context, names: dict[str, str], accept_fp: str = "") -> None:
        self.ctx = ctx
        self.names = names
        self.accept_fp = accept_fp
        self.bad_fingerprint = False
        self._tunnel_seen: dict[str, tuple[str, str]] = {}

    def __call__(self, event: ManagerEvent) -> None:
        from tui.core.manager import (
            BusyKernels,
            ConnectionState,
            HostKeyQuestion,
            JupyterState,
            LogLines,
            SetupProgress,
            TunnelChanged,
        )

        if isinstance(event, HostKeyQuestion):
            self._host_key(event)
        elif isinstance(event, SetupProgress):
            self._setup(event.event)
        elif isinstance(event, LogLines):
            for line in event.lines:
                self.ctx.print(line)
        elif isinstance(event, ConnectionState):
            name = self.names.get(event.instance_id, event.instance_id)
            if event.state == "connecting":  # progress chatter on stderr: stdout stays the command's output
                print(f"Connecting to {name}...", file=sys.stderr)
            elif event.state == "lost":
                print(f"Connection to {name} lost ({event.error})", file=sys.stderr)
        elif isinstance(event, JupyterState):
            self._jupyter(event)
        elif isinstance(event, TunnelChanged):
            info = event.info
            key = (str(info.state), info.error)
            if info.state != "starting" and self._tunnel_seen.get(info.instance) != key:
                self._tunnel_seen[info.instance] = key
                name = self.names.get(info.instance, info.instance)
                self.ctx.print(f"Tunnel 127.0.0.1:{info.local_port} -> {name}:{info.remote_port}: {info.state}"
                               + (f" ({info.error})" if info.error else ""))
        elif isinstance(event, BusyKernels):
            self.ctx.print(f"{len(event.kernels)} kernel(s) busy on {self.names.get(event.instance_id, '?')}:")
            for k in event.kernels:
                self.ctx.print(f"  {k.name} {k.id[:8]} {k.path or '(no notebook)'}: {k.execution_state}")
        sys.stdout.flush()

    def _setup(self, event: Any) -> None:
        from tui.core.guide import OutputLines, Reconnecting, StepFinished, StepStarted

        if isinstance(event, StepStarted):
            self.ctx.print(f"[{event.index + 1}/{event.total}] {event.step}: {event.description}")
        elif isinstance(event, OutputLines):
            for line in event.lines:
                self.ctx.print(f"    {line}")
        elif isinstance(event, StepFinished):
            r = event.result
            self.ctx.print(f"  -> {r.status.value} ({r.seconds:.1f} s)" + (f": {r.error}" if r.error else ""))
        elif isinstance(event, Reconnecting):
            self.ctx.print(f"  connection lost in {event.step} ({event.error}); reconnecting, attempt {event.attempt}")

    def _jupyter(self, event: Any) -> None:
        name = self.names.get(event.instance_id, event.instance_id)
        if event.state == "error":
            print(f"cades-tui: error: {event.error}", file=sys.stderr)
        elif event.state == "running":
            where = f"{event.public_url} (token hidden)" if event.local_port else f"port {event.remote_port} on the VM"
            self.ctx.print(f"Jupyter is running on {name}: {where}" + (f"; {event.error}" if event.error else ""))
        else:
            self.ctx.print(f"Jupyter on {name}: {event.state}")

    def _host_key(self, q: Any) -> None:
        print(f"Host {q.host}:{q.port} ({self.names.get(q.instance_id, q.instance_id)}) presents an unknown "
              f"{q.key_type} key, fingerprint {q.fingerprint}.", file=sys.stderr)
        if self.accept_fp:
            if self.accept_fp != q.fingerprint:
                self.bad_fingerprint = True
                print(f"cades-tui: error: the host presents {q.fingerprint}, not {self.accept_fp}", file=sys.stderr)
            q.answer(self.accept_fp == q.fingerprint)
        elif sys.stdin.isatty():
            q.answer(input("Trust this host key? [y/N] ").strip().lower() in ("y", "yes"))
        else:
            print(f"Re-run with --accept-host-key {q.fingerprint} once you have checked it.", file=sys.stderr)
            q.refuse()


Body = Callable[["RemoteManager", "RemoteContext", Printer], Awaitable[int]]


def _with_manager(args: argparse.Namespace, ctx: Context, body: Body, **options: Any) -> int:
    """Resolve the instance (blocking cloud calls), then run `body` on a fresh manager; Ctrl+C ends cleanly."""
    import asyncio

    from tui.core.manager import ManagerError, ManagerOptions, RemoteManager
    from tui.core.services import Services
    from tui.core.state import AppState
    from tui.startup import err

    services = Services(ctx.settings)
    rctx = services.prepare(ctx.cloud, args.name)
    printer = Printer(ctx, {rctx.instance.id: rctx.instance.name}, args.accept_host_key)

    async def go() -> int:
        manager = RemoteManager(ctx.settings, services, AppState.load(), printer, ManagerOptions(**options))
        try:
            return await body(manager, rctx, printer)
        except ManagerError as exc:
            if not printer.bad_fingerprint:
                err(str(exc))
            return EXIT_USAGE if printer.bad_fingerprint else EXIT_FAIL
        finally:
            await manager.aclose()

    try:
        return asyncio.run(go())
    except KeyboardInterrupt:
        ctx.print("Stopped (Ctrl+C). Jupyter keeps running on the VM.")
        return EXIT_OK


async def _forever() -> None:
    import asyncio

    await asyncio.Event().wait()


async def _serve_tunnel(m: RemoteManager, rctx: RemoteContext, ctx: Context) -> int:
    """Keep the tunnel up in the foreground until Ctrl+C, then close it (Jupyter keeps running)."""
    ctx.print(FOREGROUND_NOTE)
    ctx.out.flush()
    try:
        await _forever()
    finally:
        await m.close_tunnel(rctx.instance.id)
    return EXIT_OK  # pragma: no cover - ended by Ctrl+C


# -- commands -------------------------------------------------------------------------------------------


def cmd_setup(args: argparse.Namespace, ctx: Context) -> int:
    """The guide's steps 2-3 on one instance, every line streamed; a re-run skips what is done."""
    import asyncio

    from tui.core.guide import dry_run
    from tui.core.services import Services
    from tui.startup import err

    if args.dry_run:
        ctx.out.write(asyncio.run(dry_run(Services(ctx.settings).setup_settings())))
        return EXIT_OK

    async def approve(device: str, size: str) -> bool:
        if args.format_empty_volume:
            return True
        if not sys.stdin.isatty():
            print(f"Volume {device} ({size}) is empty and not formatted: re-run with --format-empty-volume to "
                  "format (ext4) and mount it.", file=sys.stderr)
            return False
        answer = input(f"Volume {device} ({size}) is empty. Format it (ext4) and mount it? [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    async def body(m: RemoteManager, rctx: RemoteContext, out: Printer) -> int:
        pin = "pinned from the console log" if rctx.pinned else "trust on first use"
        ctx.print(f"Setting up {rctx.instance.name} ({rctx.target.describe()}, host key {pin})")
        result = await m.run_setup(rctx, approve_format=approve)
        ctx.print(result.summary)
        if result.ok:
            return EXIT_OK
        if not out.bad_fingerprint:
            err(f"setup of {rctx.instance.name} stopped; fix the cause and run `cades-tui setup "
                f"{rctx.instance.name}` again (finished steps are skipped)")
        return EXIT_USAGE if out.bad_fingerprint else EXIT_FAIL

    return _with_manager(args, ctx, body)


def cmd_ssh(args: argparse.Namespace, ctx: Context) -> int:
    """An interactive shell (or COMMAND) through OpenSSH, with the app's key and its verified known_hosts."""
    import shutil
    import subprocess
    import time
    from datetime import UTC, datetime

    from tui.core.cloud.base import CloudError
    from tui.core.remote.connection import openssh_argv
    from tui.core.services import Services

    if shutil.which("ssh") is None:
        raise CloudError("the OpenSSH client (ssh) is not installed", "install openssh-client")
    targets: list[Any] = []
    instances: list[Any] = []

    async def body(m: RemoteManager, rctx: RemoteContext, out: Printer) -> int:
        await m.connect(rctx)  # settles the host key first: OpenSSH then checks it strictly
        targets.append(rctx.target)
        instances.append(rctx.instance)
        return EXIT_OK

    code = _with_manager(args, ctx, body)
    if code != EXIT_OK or not targets:
        return code
    words = [w for w in args.remote_command if w != "--"] if args.remote_command else []
    command = " ".join(words) if words else None
    started, t0 = datetime.now(UTC), time.monotonic()
    code = subprocess.call(openssh_argv(targets[0], command))
    Services(ctx.settings).command_log(instances[0]).record(command or "(interactive shell)", code,
                                                             time.monotonic() - t0, started)
    return code


def cmd_jupyter(args: argparse.Namespace, ctx: Context) -> int:
    return {"start": _jupyter_start, "stop": _jupyter_stop, "logs": _jupyter_logs}[args.jupyter_command](args, ctx)


def _jupyter_start(args: argparse.Namespace, ctx: Context) -> int:
    async def body(m: RemoteManager, rctx: RemoteContext, out: Printer) -> int:
        import time

        t0 = time.monotonic()
        state = await m.start_jupyter(rctx, args.local_port)
        ctx.print(f"Answered through the tunnel after {time.monotonic() - t0:.1f} s "
                  f"(server port {state.remote_port} on the VM).")
        await m.close_tunnel(rctx.instance.id)
        name = rctx.instance.name
        ctx.print(f"Jupyter keeps running on {name}. Open it with: cades-tui open {name}  "
                  f"(or forward a port with: cades-tui tunnel {name})")
        return EXIT_OK

    return _with_manager(args, ctx, body)


def _jupyter_stop(args: argparse.Namespace, ctx: Context) -> int:
    async def body(m: RemoteManager, rctx: RemoteContext, out: Printer) -> int:
        from tui.startup import err

        if not await m.stop_jupyter(rctx, force=args.force):
            if not sys.stdin.isatty():
                err("not stopped: kernels are busy (their work would be lost); pass --force to stop anyway")
                return EXIT_FAIL
            if input("Stop Jupyter anyway? Running work is lost. [y/N] ").strip().lower() not in ("y", "yes"):
                ctx.print("Not stopped.")
                return EXIT_FAIL
            await m.stop_jupyter(rctx, force=True)
        ctx.print(f"Jupyter on {rctx.instance.name} is stopped (process and session verified gone).")
        return EXIT_OK

    return _with_manager(args, ctx, body)


def _jupyter_logs(args: argparse.Namespace, ctx: Context) -> int:
    from tui.core.cloud.base import InvalidInput

    if args.lines < 0:
        raise InvalidInput(f"--lines {args.lines}: expected a number of lines, 0 or more", "e.g. -n 100")

    async def body(m: RemoteManager, rctx: RemoteContext, out: Printer) -> int:
        if not args.follow:
            for line in await m.read_log(rctx, args.lines):
                ctx.print(line)
            return EXIT_OK
        await m.follow_log(rctx)
        await _forever()
        return EXIT_OK  # pragma: no cover - ended by Ctrl+C

    return _with_manager(args, ctx, body, log_history=args.lines)


def _check_port(port: int | None) -> None:
    from tui.core.cloud.base import InvalidInput

    if port is not None and not 1 <= port <= 65535:
        raise InvalidInput(f"--local-port {port}: expected a TCP port 1-65535", "or omit it to pick a free one")


def cmd_tunnel(args: argparse.Namespace, ctx: Context) -> int:
    _check_port(args.local_port)

    async def body(m: RemoteManager, rctx: RemoteContext, out: Printer) -> int:
        state = await m.open_tunnel(rctx, args.local_port, strict=args.local_port is not None)
        ctx.print(f"Forwarding {state.public_url} -> {rctx.instance.name}:{state.remote_port} "
                  f"(`cades-tui open {rctx.instance.name}` gives the URL with its token).")
        return await _serve_tunnel(m, rctx, ctx)

    return _with_manager(args, ctx, body)


def cmd_open(args: argparse.Namespace, ctx: Context) -> int:
    _check_port(args.local_port)

    async def body(m: RemoteManager, rctx: RemoteContext, out: Printer) -> int:
        import asyncio
        import webbrowser

        await m.open_tunnel(rctx, args.local_port, strict=args.local_port is not None)
        url = m.token_url(rctx.instance.id)
        assert url is not None  # the tunnel was just verified
        ctx.print(f"Jupyter on {rctx.instance.name}: {url}")
        if ctx.out.isatty():
            ctx.out.write(osc52(url))
            ctx.print("(URL copied to the clipboard)")
        if not args.no_browser and not await asyncio.to_thread(webbrowser.open, url):
            ctx.print("No browser found here: open the URL above in yours.")
        return await _serve_tunnel(m, rctx, ctx)

    return _with_manager(args, ctx, body)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    """Every instance of the cloud and of the state file; Jupyter checked over SSH where the app started one."""
    import asyncio

    from tui.cli.cloud import table
    from tui.core.cloud.base import CloudError
    from tui.core.manager import ManagerError, RemoteManager
    from tui.core.services import Services
    from tui.core.state import AppState

    state = AppState.load()
    services = Services(ctx.settings)
    instances = {i.id: i for i in ctx.cloud.list_instances()}
    rows: list[dict[str, Any]] = []
    contexts = []
    for inst in sorted(instances.values(), key=lambda i: i.name):
        rec = state.servers.get(inst.id)
        row: dict[str, Any] = {"id": inst.id, "name": inst.name, "status": inst.status,
                               "jupyter": "-" if rec is None else "unknown", "url": "", "remote_port": None,
                               "tunnels": [], "error": ""}
        if rec is not None:
            row["remote_port"] = rec.remote_port
            row["tunnels"] = [{"local_port": p, "listening": _listening(p)} for p in rec.tunnel_ports]
            if inst.status == "ACTIVE":
                try:
                    contexts.append((row, services.prepare(ctx.cloud, inst.id)))
                except CloudError as exc:
                    row["error"] = str(exc)
            else:
                row["jupyter"] = "stopped"
        rows.append(row)
    for iid, rec in state.servers.items():
        if iid not in instances:
            rows.append({"id": iid, "name": "?", "status": "GONE", "jupyter": "unknown", "url": "",
                         "remote_port": rec.remote_port, "tunnels": [], "error": "instance not found in the cloud"})

    async def check() -> None:
        manager = RemoteManager(ctx.settings, services, state, _refuse_host_keys)

        async def one(row: dict[str, Any], rctx: RemoteContext) -> None:
            try:
                handle = await manager.find_jupyter(rctx)
            except ManagerError as exc:
                row["error"] = str(exc)
                return
            if handle is None:
                row["jupyter"] = "stopped"
                return
            up = [t["local_port"] for t in row["tunnels"] if t["listening"]]
            url = handle.url(up[0]) if up else handle.url()
            row.update(jupyter="running", remote_port=handle.port,
                       url=url if args.show_token else masked(handle.public_url(up[0] if up else None)))

        try:
            await asyncio.gather(*(one(row, c) for row, c in contexts))
        finally:
            await manager.aclose()

    if contexts:
        asyncio.run(check())
    if args.json:
        ctx.json(rows)
        return EXIT_OK
    if not rows:
        ctx.print("No instances. Launch one with: cades-tui launch NAME")
        return EXIT_OK
    table_rows = [(r["name"], r["status"], r["jupyter"], r["url"] or "-",
                   ", ".join(f"{t['local_port']} ({'listening' if t['listening'] else 'closed'})"
                             for t in r["tunnels"]) or "-", r["error"]) for r in rows]
    ctx.print(table(table_rows, ("NAME", "STATUS", "JUPYTER", "URL", "TUNNELS", "NOTE")))
    return EXIT_OK


def _refuse_host_keys(event: ManagerEvent) -> None:
    """Status never asks: unknown host keys are refused (and reported on that instance's row)."""
    from tui.core.manager import HostKeyQuestion

    if isinstance(event, HostKeyQuestion):
        event.refuse()


COMMANDS: dict[str, Callable[[argparse.Namespace, Context], int]] = {
    "setup": cmd_setup,
    "ssh": cmd_ssh,
    "jupyter": cmd_jupyter,
    "tunnel": cmd_tunnel,
    "open": cmd_open,
    "status": cmd_status,
}
