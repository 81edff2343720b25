"""An unprivileged SSH host on loopback addresses (127.0.0.x): one sandbox "VM".

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

The host listens on `listen` (default 127.0.0.1; a sandbox server: its private 127.0.0.N, plus 127.0.0.1 while it
has a floating IP), one port on every address; `set_listen()` changes them without dropping sessions (SIGHUP).
`log_level="DEBUG1"` makes sshd log every forwarded connection's target (OpenSSH 9.2 logs
`server_request_direct_tcpip: originator ... target 127.0.0.N port P` at DEBUG1 only; VERBOSE and INFO do not),
which is how a test proves a connection went through this host as a jump host.

Fallback when no sshd binary is installed: an asyncssh server (public key auth, the same host key, commands
run with `/bin/sh -c` in HOME with the same environment, port forwarding and SFTP allowed). It serves the
same API; it does not allocate real PTYs.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import getpass
import hashlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tui.sandbox import procs
from tui.sandbox.sshfallback import AsyncSSHServer

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
MARKER_ENV = "CADES_SANDBOX_VM"
START_TIMEOUT_S = 10.0


class SSHHostError(RuntimeError):
    """The SSH host could not be started."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(hosts: Sequence[str] = ("127.0.0.1",)) -> int:
    """A port the OS calls free on the first address and that is free on the others too."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((hosts[0], 0))
            port = int(s.getsockname()[1])
        if all(port_is_free(port, h) for h in hosts[1:]):
            return port
    raise SSHHostError(f"no port free on all of {', '.join(hosts)}")


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
        listen: Sequence[str] = ("127.0.0.1",),
        log_level: str = "INFO",
        sshd_path: str | None = None,
    ) -> None:
        """`sshd_path`: None finds /usr/sbin/sshd (else the asyncssh fallback); "" forces the fallback.
        `listen`: loopback addresses to serve on; `log_level`: sshd's LogLevel (DEBUG1 logs forwarding targets)."""
        self.root = Path(root).resolve()
        self.listen = _loopback(listen)
        self.log_level = log_level
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
        self._fallback: AsyncSSHServer | None = None
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
        """A known_hosts line naming every address the host listens on."""
        key_type, blob = self.host_public_key.split()[:2]
        return f"{','.join(f'[{a}]:{self.port}' for a in self.listen)} {key_type} {blob}"

    def set_listen(self, listen: Sequence[str]) -> None:
        """Serve on these addresses from now on; a running sshd re-reads its config (SIGHUP), sessions stay."""
        listen = _loopback(listen)
        if listen == self.listen:
            return
        gone = [a for a in self.listen if a not in listen]
        added = [a for a in listen if a not in self.listen]
        self.listen = listen
        if not self.running:
            return
        if self._proc is not None:
            if not all(port_is_free(self.port, a) for a in added):
                raise SSHHostError(f"port {self.port} is taken on one of {', '.join(listen)}")
            self._write_config()
            _reload_config(self._proc)
            self._wait_listening(self._proc, self.log_path.stat().st_size if self.log_path.exists() else 0, gone)
        elif self._fallback is not None:  # asyncssh cannot add a listener in place: restart it
            self._fallback.stop()
            self._fallback = None
            self._start_fallback()

    def set_authorized_keys(self, keys: list[str]) -> None:
        self.authorized_keys = list(keys)
        self._write_authorized_keys()

    def start(self) -> None:
        """Start serving (no-op when running). Reuses `self.port` when set and free. An sshd an earlier run left
        serving this VM (its app was killed: its pid file names it) is ended first."""
        if self.running:
            return
        end_leftover(self.root)
        if not self.port or not all(port_is_free(self.port, a) for a in self.listen):
            # 127.0.0.1 first (every floating IP is it, and every process's listeners share it): the kernel's pick
            # there, free on the VM's own address too, so a floating IP bound later finds the port free more often
            self.port = free_port(["127.0.0.1", *[a for a in self.listen if a != "127.0.0.1"]])
        self._write_authorized_keys()
        if self.sshd_path:
            self._start_sshd()
        else:
            self._start_fallback()

    def stop(self) -> None:
        """Power off: stop sshd, its connections and every process started in this VM. Idempotent."""
        self._stop_server(signal.SIGTERM)
        procs.terminate_marked(f"{MARKER_ENV}={self.root}")

    def disconnect(self) -> None:
        """The cloud goes offline but the VM keeps running: stop sshd and its connections (SIGTERM), leave the
        VM's own processes (a detached Jupyter in screen) alone. start() brings sshd back on the same port."""
        self._stop_server(signal.SIGTERM)

    def kill(self) -> None:
        """Network cut: SIGKILL sshd and its connections; processes in the VM keep running."""
        self._stop_server(procs.HARD_KILL)

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
            f'if [ -d "${MARKER_ENV}/bin" ]; then PATH="${MARKER_ENV}/bin:$PATH"; export PATH; fi\n'
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
            + "".join(f"ListenAddress {a}\n" for a in self.listen)
            + f"LogLevel {self.log_level}\n"
            f"HostKey {_q(str(self.host_key_path))}\n"
            f"PidFile {_q(str(self.etc / 'sshd.pid'))}\n"
            f"AuthorizedKeysFile {_q(str(self.etc / 'authorized_keys'))}\n" + "UsePAM no\n"
            "StrictModes no\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "AllowTcpForwarding yes\n"
            "GatewayPorts no\n"  # a client's remote forwards (-R) listen on loopback only, whatever it asks
            "PrintMotd no\n"
            "PrintLastLog no\n"
            "Subsystem sftp internal-sftp\n"
            f"SetEnv {env}\n"
            f"ForceCommand {_q(str(session))}\n"
        )
        return cfg

    def _start_sshd(self) -> None:
        if sys.platform != "win32" and os.geteuid() == 0:  # sshd's privilege-separation directory, as root
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self._write_config()
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        # Tied to this process: sshd ends with it however it ends (SIGKILL included; Linux), and the terminal's
        # SIGHUP, which sshd would take for "re-read your config", never reaches it.
        self._proc = procs.popen_tied(
            [self.sshd_path, *sshd_args(self.root)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_listening(self._proc, log_offset)

    def _wait_listening(self, proc: subprocess.Popen[bytes], log_offset: int, gone: Sequence[str] = ()) -> None:
        """Until sshd answers on every listen address (and no longer on `gone`); SSHHostError if it cannot."""
        where = ", ".join(f"{a}:{self.port}" for a in self.listen)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                self._proc = None
                raise SSHHostError(f"sshd exited at start on {where}: {err.strip()} {self._log_tail(log_offset)}")
            if all(_banner_ok(a, self.port) for a in self.listen) and not any(_banner_ok(a, self.port) for a in gone):
                return
            time.sleep(0.02)
        self._stop_server(procs.HARD_KILL)
        raise SSHHostError(
            f"sshd did not accept on {where} within {START_TIMEOUT_S:.0f} s: {self._log_tail(log_offset)}"
        )

    def _start_fallback(self) -> None:
        fallback = AsyncSSHServer(self)
        try:
            fallback.start(START_TIMEOUT_S)
        except Exception as exc:
            raise SSHHostError(f"asyncssh server could not listen on {self.listen}:{self.port}: {exc}") from exc
        self._fallback = fallback

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
        conns = [p for p in procs.descendants(proc.pid) if procs.comm(p) == "sshd"]
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
        procs.wait_gone(conns, 3.0)


def sshd_args(root: Path) -> list[str]:
    """sshd's arguments for the VM at `root` (after the program): by these its process is recognised later."""
    etc = root / "etc"
    return ["-D", "-f", str(etc / "sshd_config"), "-E", str(etc / "sshd.log")]


def end_leftover(root: Path) -> int | None:
    """End the sshd an earlier run left serving the VM at `root`, and its connections: the pid in its pid file,
    when that process really is sshd run with this VM's config (never another process that got the number).
    Returns the pid ended, or None."""
    try:
        pid = int((root / "etc" / "sshd.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if not procs.runs_with(pid, "sshd", *sshd_args(root)[:3]):
        return None
    conns = [p for p in procs.descendants(pid) if procs.comm(p) == "sshd"]
    procs.end([pid, *conns])
    return pid


def end_orphans() -> list[int]:
    """End sshd listeners of VMs whose folder is gone, left by runs that ended without stopping them (before
    their sshd was tied to the app): orphans (parent 1) of this user, run with exactly the arguments an SSH
    host gives (`-D -f R/etc/sshd_config -E R/etc/sshd.log`) for an `R/etc` that no longer exists. Linux only
    (elsewhere: nothing). Returns the pids ended."""
    if not procs.PROC.is_dir():
        return []
    found = []
    for pid in procs.all_pids():
        st = procs.stat(pid)
        if not st or st[0] != "sshd" or st[2] != "1" or not procs.owned(pid):
            continue
        argv = procs.cmdline(pid)
        words = argv[0].split(" ") if len(argv) == 1 else argv
        try:
            cfg = Path(words[words.index("-f", 1) + 1])
        except (ValueError, IndexError):
            continue
        root = cfg.parent.parent
        if cfg.name == "sshd_config" and not cfg.parent.exists() and procs.runs_with(pid, "sshd", *sshd_args(root)):
            found.append(pid)
    if found:
        procs.end(found)
    return found


def runtime_dir(root: Path) -> Path:
    """A short per-VM directory for sockets: /tmp/cades-vm-<hash of the VM's root>."""
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"cades-vm-{digest}"


def remove_runtime_dir(root: Path) -> None:
    shutil.rmtree(runtime_dir(root), ignore_errors=True)


def _reload_config(proc: subprocess.Popen[bytes]) -> None:
    """sshd re-reads its config on SIGHUP (sshd runs on POSIX only: Windows has neither SIGHUP nor this sshd)."""
    if sys.platform != "win32":
        proc.send_signal(signal.SIGHUP)


def _banner_ok(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def _loopback(addresses: Sequence[str]) -> list[str]:
    """The addresses, checked: every listener binds 127.0.0.x, never a routable address. Those this machine does
    not have are left out while one remains: Linux answers on all of 127.0.0.0/8, macOS only on 127.0.0.1 until
    more are added (`sudo ifconfig lo0 alias 127.0.0.2 up`) — there a VM with a floating IP (127.0.0.1) still
    serves, one with only its private 127.0.0.N does not."""
    out = list(dict.fromkeys(addresses))
    bad = [a for a in out if not a.startswith("127.")]
    if not out or bad:
        raise ValueError(f"SSH hosts listen on loopback addresses only, not {bad or 'nothing'}")
    present = [a for a in out if _has_address(a)]
    return present or out  # none at all: sshd says why


def _has_address(address: str) -> bool:
    """Whether this machine has `address` (a listener could bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((address, 0))
        except OSError as exc:
            return exc.errno != errno.EADDRNOTAVAIL
    return True
