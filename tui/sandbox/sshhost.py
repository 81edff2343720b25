"""An unprivileged SSH host on 127.0.0.1: one sandbox "VM".

Layout of an instance directory (`root`):

    root/home        the VM's disk: HOME and working directory of every session
    root/screens     SCREENDIR (mode 700) so instances' screen sessions never mix
    root/tmux        TMUX_TMPDIR
    root/etc         sshd_config, the ed25519 host key (generated once, kept across restarts),
                     authorized_keys, session.sh, sshd.pid, sshd.log

With OpenSSH (`/usr/sbin/sshd`) the host runs `sshd -D -f root/etc/sshd_config -E root/etc/sshd.log` as the
current user, who is then the only user it accepts. `SetEnv` gives sessions HOME/SCREENDIR/TMUX_TMPDIR and
`ForceCommand root/etc/session.sh` makes them start in HOME (sshd itself would `chdir` to the passwd home).
Every session also gets `CADES_SANDBOX_VM=<root>`: `stop()` ("power off") ends every process carrying it,
including detached screen/tmux sessions; `kill()` ("network cut") only kills sshd and its connections.

Fallback when no sshd binary is installed: an asyncssh server (public key auth, the same host key, commands
run with `/bin/sh -c` in HOME with the same environment, port forwarding and SFTP allowed). It serves the
same API; it does not allocate real PTYs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import getpass
import hashlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
MARKER_ENV = "CADES_SANDBOX_VM"
START_TIMEOUT_S = 10.0


class SSHHostError(RuntimeError):
    """The SSH host could not be started."""


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fingerprint_sha256(public_key_line: str) -> str:
    """OpenSSH-style fingerprint ("SHA256:...") of an openssh public key line."""
    blob = base64.b64decode(public_key_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _q(value: str) -> str:
    """Quote an sshd_config argument."""
    return '"' + value.replace('"', '\\"') + '"'


class SSHHost:
    """One SSH host ("VM") rooted at `root`. See the module docstring."""

    def __init__(
        self,
        root: Path,
        authorized_keys: list[str],
        port: int = 0,
        *,
        sshd_path: str | None = None,
    ) -> None:
        """`sshd_path`: None finds /usr/sbin/sshd (else the asyncssh fallback); "" forces the fallback."""
        self.root = Path(root).resolve()
        self.authorized_keys = list(authorized_keys)
        self.port = port
        self.user = getpass.getuser()
        self.home = self.root / "home"
        self.etc = self.root / "etc"
        # screen and tmux put unix sockets there, and a socket path must fit in 107 bytes: a deep state dir
        # (pytest's tmp dirs, a long $HOME) would make `screen -dm` fail silently. Keep them short, per VM.
        self.runtime = runtime_dir(self.root)
        self.screendir = self.runtime / "screens"
        self.tmuxdir = self.runtime / "tmux"
        self.host_key_path = self.etc / "ssh_host_ed25519_key"
        self.log_path = self.etc / "sshd.log"
        if sshd_path is None:
            sshd_path = SSHD if os.access(SSHD, os.X_OK) else ""
        self.sshd_path = sshd_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._fallback: _AsyncSSHServer | None = None
        self._prepare_dirs()
        self.host_public_key = self._ensure_host_key()
        self.host_key_fingerprint = fingerprint_sha256(self.host_public_key)

    # -- public API -----------------------------------------------------------------------------------

    @property
    def backend(self) -> str:
        return "openssh" if self.sshd_path else "asyncssh"

    @property
    def running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self._fallback is not None

    def session_env(self) -> dict[str, str]:
        return {
            "HOME": str(self.home),
            "SCREENDIR": str(self.screendir),
            "TMUX_TMPDIR": str(self.tmuxdir),
            MARKER_ENV: str(self.root),
        }

    def known_hosts_line(self) -> str:
        key_type, blob = self.host_public_key.split()[:2]
        return f"[127.0.0.1]:{self.port} {key_type} {blob}"

    def set_authorized_keys(self, keys: list[str]) -> None:
        self.authorized_keys = list(keys)
        self._write_authorized_keys()

    def start(self) -> None:
        """Start serving (no-op when running). Reuses `self.port` when set and free."""
        if self.running:
            return
        if not self.port or not port_is_free(self.port):
            self.port = free_port()
        self._write_authorized_keys()
        if self.sshd_path:
            self._start_sshd()
        else:
            self._fallback = _AsyncSSHServer(self)
            self._fallback.start()

    def stop(self) -> None:
        """Power off: stop sshd, its connections and every process started in this VM. Idempotent."""
        self._stop_server(signal.SIGTERM)
        _terminate_marked(str(self.root))

    def disconnect(self) -> None:
        """The cloud goes offline but the VM keeps running: stop sshd and its connections (SIGTERM), leave the
        VM's own processes (a detached Jupyter in screen) alone. start() brings sshd back on the same port."""
        self._stop_server(signal.SIGTERM)

    def kill(self) -> None:
        """Network cut: SIGKILL sshd and its connections; processes in the VM keep running."""
        self._stop_server(signal.SIGKILL)

    # -- internals ------------------------------------------------------------------------------------

    def _prepare_dirs(self) -> None:
        for d in (self.home, self.etc, self.tmuxdir):
            d.mkdir(parents=True, exist_ok=True)
        self.screendir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.screendir, 0o700)
        os.chmod(self.etc, 0o700)

    def _ensure_host_key(self) -> str:
        pub = self.host_key_path.with_name(self.host_key_path.name + ".pub")
        if not (self.host_key_path.exists() and pub.exists()):
            import asyncssh

            key = asyncssh.generate_private_key("ssh-ed25519", comment="sandbox-host")
            key.write_private_key(str(self.host_key_path))
            key.write_public_key(str(pub))
        os.chmod(self.host_key_path, 0o600)
        return " ".join(pub.read_text().split()[:2])

    def _write_authorized_keys(self) -> None:
        path = self.etc / "authorized_keys"
        path.write_text("".join(k.strip() + "\n" for k in self.authorized_keys if k.strip()))
        os.chmod(path, 0o600)

    def _write_config(self) -> Path:
        session = self.etc / "session.sh"
        sftp = SFTP_SERVER if os.access(SFTP_SERVER, os.X_OK) else ""
        session.write_text(
            "#!/bin/sh\n"
            "# ForceCommand: start every session in the VM's HOME, like a real VM does.\n"
            'cd "$HOME" || exit 1\n'
            'case "$SSH_ORIGINAL_COMMAND" in\n'
            '  "") exec "${SHELL:-/bin/sh}" -l ;;\n'
            f"  internal-sftp*) exec {shlex.quote(sftp or '/bin/false')} ;;\n"
            "esac\n"
            'exec "${SHELL:-/bin/sh}" -c "$SSH_ORIGINAL_COMMAND"\n'
        )
        os.chmod(session, 0o700)  # sshd runs it as this same user
        env = " ".join(_q(f"{k}={v}") for k, v in self.session_env().items())
        cfg = self.etc / "sshd_config"
        cfg.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {_q(str(self.host_key_path))}\n"
            f"PidFile {_q(str(self.etc / 'sshd.pid'))}\n"
            f"AuthorizedKeysFile {_q(str(self.etc / 'authorized_keys'))}\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "AllowTcpForwarding yes\n"
            "PrintMotd no\n"
            "PrintLastLog no\n"
            "Subsystem sftp internal-sftp\n"
            f"SetEnv {env}\n"
            f"ForceCommand {_q(str(session))}\n"
        )
        return cfg

    def _start_sshd(self) -> None:
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        cfg = self._write_config()
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._proc = subprocess.Popen(
            [self.sshd_path, "-D", "-f", str(cfg), "-E", str(self.log_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                self._proc = None
                raise SSHHostError(
                    f"sshd exited at start on 127.0.0.1:{self.port}: {err.strip()} {self._log_tail(log_offset)}"
                )
            if _banner_ok(self.port):
                return
            time.sleep(0.02)
        self._stop_server(signal.SIGKILL)
        raise SSHHostError(
            f"sshd did not accept on 127.0.0.1:{self.port} within {START_TIMEOUT_S:.0f} s: {self._log_tail(log_offset)}"
        )

    def _log_tail(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(offset)
                return f.read()[-2000:].decode(errors="replace").strip()
        except OSError:
            return ""

    def _stop_server(self, sig: signal.Signals) -> None:
        if self._fallback is not None:
            self._fallback.stop()
            self._fallback = None
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # Connection processes call setsid(): find them (and their sshd children) before the listener dies.
        conns = [p for p in _descendants(proc.pid) if _comm(p) == "sshd"]
        for pid in [proc.pid, *conns]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()
        _wait_gone(conns, 3.0)


def runtime_dir(root: Path) -> Path:
    """A short per-VM directory for sockets: /tmp/cades-vm-<hash of the VM's root>."""
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"cades-vm-{digest}"


def remove_runtime_dir(root: Path) -> None:
    shutil.rmtree(runtime_dir(root), ignore_errors=True)


# -- process helpers (Linux /proc) --------------------------------------------------------------------


def _banner_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return [raw[raw.index("(") + 1 : raw.rindex(")")], *raw[raw.rindex(")") + 2 :].split()]


def _comm(pid: int) -> str:
    st = _stat(pid)
    return st[0] if st else ""


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[1] != "Z"


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _descendants(root_pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        st = _stat(pid)
        if st:
            children.setdefault(int(st[2]), []).append(pid)
    out: list[int] = []
    todo = [root_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _marked_pids(marker: str) -> list[int]:
    needle = f"{MARKER_ENV}={marker}".encode()
    me = os.getpid()
    out = []
    for pid in _all_pids():
        if pid == me:
            continue
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            out.append(pid)
    return out


def _wait_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [p for p in pids if _alive(p)]
        if not pids:
            return True
        time.sleep(0.02)
    return False


def _terminate_marked(marker: str) -> None:
    """SIGTERM, then SIGKILL, every process started inside the VM `marker`."""
    pids = _marked_pids(marker)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        if _wait_gone(pids, 2.0):
            return


# -- asyncssh fallback --------------------------------------------------------------------------------


class _AsyncSSHServer:
    """An asyncssh server on its own event loop thread, standing in for sshd."""

    def __init__(self, host: SSHHost) -> None:
        self.host = host
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"sshhost-{host.port}", daemon=True)
        self.server: Any = None
        self.conns: set[Any] = set()
        self.procs: set[asyncio.subprocess.Process] = set()

    def start(self) -> None:
        self.thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._listen(), self.loop)
        try:
            fut.result(timeout=START_TIMEOUT_S)
        except Exception as exc:
            self.stop()
            raise SSHHostError(f"asyncssh server could not listen on 127.0.0.1:{self.host.port}: {exc}") from exc

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
            "127.0.0.1",
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
