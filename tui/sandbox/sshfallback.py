"""The SSH host's stand-in where OpenSSH is missing: an asyncssh server with the same keys, HOME and env."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui.sandbox.sshhost import SSHHost


class AsyncSSHServer:
    """An asyncssh server on its own event loop thread, standing in for sshd."""

    def __init__(self, host: SSHHost) -> None:
        self.host = host
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"sshhost-{host.port}", daemon=True)
        self.server: Any = None
        self.conns: set[Any] = set()
        self.procs: set[asyncio.subprocess.Process] = set()

    def start(self, timeout: float) -> None:
        """Listen, or raise what stopped it (after cleaning up)."""
        self.thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._listen(), self.loop)
        try:
            fut.result(timeout=timeout)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(timeout=5)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
        if not self.loop.is_running():
            self.loop.close()

    async def _close(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.conns):
            conn.abort()
        for proc in list(self.procs):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def _listen(self) -> None:
        import asyncssh

        host = self.host
        outer = self

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn: Any) -> None:
                self._conn = conn
                outer.conns.add(conn)

            def connection_lost(self, exc: Exception | None) -> None:
                outer.conns.discard(self._conn)

            def begin_auth(self, username: str) -> bool:
                return True

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: Any) -> bool:
                if username != host.user:
                    return False
                wanted = {" ".join(k.split()[:2]) for k in host.authorized_keys}
                return " ".join(key.export_public_key().decode().split()[:2]) in wanted

        self.server = await asyncssh.listen(
            host.listen if len(host.listen) > 1 else host.listen[0],
            host.port,
            server_factory=Server,
            server_host_keys=[str(host.host_key_path)],
            process_factory=self._run,
            sftp_factory=self._sftp_factory(),
            allow_scp=True,
            encoding=None,
            agent_forwarding=False,
            x11_forwarding=False,
        )

    def _sftp_factory(self) -> Any:
        import asyncssh

        home = os.fsencode(self.host.home)

        class HomeSFTP(asyncssh.SFTPServer):
            def map_path(self, path: bytes) -> bytes:
                return path if path.startswith(b"/") else os.path.join(home, path)

        return HomeSFTP

    async def _run(self, process: Any) -> None:
        import asyncssh

        cmd = process.command or "exec ${SHELL:-/bin/sh} -i"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "USER": self.host.user, "SHELL": "/bin/sh"}
        env.update(self.host.session_env())
        sub = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            cmd,
            cwd=self.host.home,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        self.procs.add(sub)
        try:
            await process.redirect(stdin=sub.stdin, stdout=sub.stdout, stderr=sub.stderr)
            code = await sub.wait()
            await process.stdout.drain()
            await process.stderr.drain()
            process.exit(code if code >= 0 else 255)
        except (OSError, asyncssh.Error):
            process.exit(255)
        finally:
            self.procs.discard(sub)
