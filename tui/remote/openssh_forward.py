"""OpenSSH `ssh -N -L` as a tunnel's data path: C speed for the bytes, the app's guarantees kept.

asyncssh moves ~0.5-0.6x of OpenSSH's bytes per CPU second here (Python work per 32 KiB packet), so a
tunnel can hand its data to an `ssh` process when one is installed. Guarantees:
- the host key is the one asyncssh just verified (pinned, known or accepted), written to a private
  known_hosts read with StrictHostKeyChecking=yes (never disabled); no global/user known_hosts;
- our key only (-i, IdentitiesOnly=yes), no agent/X11 forwarding, no config file, BatchMode;
- ssh listens on a Unix socket in a private 0700 directory (mode 0600): the tunnel's own 127.0.0.1
  listener stays in front, relays each connection into it and counts the bytes;
- ExitOnForwardFailure=yes, ServerAliveInterval/CountMax keepalives: a dead link ends the process,
  which the tunnel sees and reconnects;
- an ssh left behind by an app that was killed (SIGKILL: no chance to stop it) is stopped by the next one:
  each private directory names its owner's pid and its ssh's pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path

import asyncssh

from tui.remote.connection import ENCRYPTION_ALGS, SSHTarget
from tui.remote.hostkeys import key_line
from tui.remote.relay import splice_available

_ALIAS = "cades-tunnel-host"
_START_POLL_S = 0.02
_PREFIX = "cades-fwd-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans(tmp: Path | None = None) -> int:
    """Stop the ssh processes of tunnels whose app is gone (killed without a chance to stop them); remove
    their directories. Only an ssh whose command line names that very directory is signalled. Returns how many."""
    reaped = 0
    for d in Path(tmp or tempfile.gettempdir()).glob(f"{_PREFIX}*"):
        try:
            owner = int((d / "owner").read_text())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        with contextlib.suppress(OSError, ValueError):
            pid = int((d / "ssh.pid").read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if str(d).encode() in cmdline and b"ssh" in cmdline.split(b"\0")[0]:
                os.kill(pid, signal.SIGTERM)
                reaped += 1
        shutil.rmtree(d, ignore_errors=True)
    return reaped


def openssh_usable(target: SSHTarget | None) -> bool:
    """Whether `target` can be served by OpenSSH with every guarantee (key file, no jump, no ssh config)."""
    return (
        target is not None
        and target.key_path is not None
        and not target.jump
        and not target.use_ssh_config
        and splice_available()
        and shutil.which("ssh") is not None
    )


class OpenSSHForward:
    """One `ssh -N -L SOCKET:remote_host:remote_port` process at a time; `start()` again after it exits."""

    def __init__(
        self, target: SSHTarget, remote_host: str, remote_port: int, keepalive: tuple[float, int]
    ) -> None:
        assert target.key_path is not None
        self.target = target
        self.remote_host = remote_host
        self.remote_port = remote_port
        self.keepalive = keepalive
        reap_orphans()
        self._dir = Path(tempfile.mkdtemp(prefix=_PREFIX))  # 0700
        (self._dir / "owner").write_text(str(os.getpid()))
        self.socket_path = self._dir / "fwd.sock"
        self._known_hosts = self._dir / "known_hosts"
        self._log = self._dir / "ssh.log"
        self._proc: asyncio.subprocess.Process | None = None

    def argv(self) -> list[str]:
        interval, count = self.keepalive
        options = {
            "BatchMode": "yes",
            "IdentitiesOnly": "yes",
            "IdentityAgent": "none",
            "UserKnownHostsFile": str(self._known_hosts),
            "GlobalKnownHostsFile": "/dev/null",
            "StrictHostKeyChecking": "yes",
            "HostKeyAlias": _ALIAS,
            "CheckHostIP": "no",
            "UpdateHostKeys": "no",
            "ExitOnForwardFailure": "yes",
            "ServerAliveInterval": str(max(1, round(interval))),
            "ServerAliveCountMax": str(count),
            "ConnectTimeout": str(max(1, round(self.target.connect_timeout))),
            "Ciphers": ",".join(ENCRYPTION_ALGS),
            "Compression": "no",
            "ControlMaster": "no",
            "ControlPath": "none",
            "ForwardAgent": "no",
            "ForwardX11": "no",
            "PermitLocalCommand": "no",
            "StreamLocalBindMask": "0177",
            "StreamLocalBindUnlink": "yes",
            "LogLevel": "ERROR",
        }
        argv = ["ssh", "-N", "-F", "/dev/null", "-p", str(self.target.port), "-i", str(self.target.key_path)]
        for name, value in options.items():
            argv += ["-o", f"{name}={value}"]
        argv += ["-L", f"{self.socket_path}:{self.remote_host}:{self.remote_port}"]
        if self.target.user:
            argv += ["-l", self.target.user]
        return [*argv, "--", self.target.host]

    async def start(self, host_key: asyncssh.SSHKey, timeout: float) -> None:
        """Run ssh trusting exactly `host_key`; return once its socket listens. Raises OSError with ssh's reason."""
        await self.stop()
        self._known_hosts.write_text(f"{_ALIAS} {key_line(host_key)}\n")
        self.socket_path.unlink(missing_ok=True)
        with self._log.open("wb") as log:
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv(), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=log
            )
        (self._dir / "ssh.pid").write_text(str(self._proc.pid))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.socket_path.exists():
            if self._proc.returncode is not None or loop.time() > deadline:
                await self.stop()
                raise OSError(f"ssh -L did not start: {self._reason()}")
            await asyncio.sleep(_START_POLL_S)

    async def wait_exit(self) -> None:
        """Until the current ssh process ends (at once when none runs)."""
        if self._proc is not None:
            await self._proc.wait()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def stop(self) -> None:
        """End the ssh process (terminate, then kill) and reap it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 2.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    async def close(self) -> None:
        """Stop and remove the private directory."""
        await self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _reason(self) -> str:
        try:
            text = self._log.read_text(errors="replace").strip()
        except OSError:
            text = ""
        return text.splitlines()[-1] if text else "no reason given (timed out or exited)"
