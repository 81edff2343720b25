"""The servers' "VMs": one SSH host (a real sshd) per running server, started, re-listened, stopped and destroyed
as the state machine's transitions say."""

from __future__ import annotations

import logging
import shutil
import threading
from typing import TYPE_CHECKING

from tui.conventions import META_SSH_PORT, META_SSH_USER
from tui.sandbox import cron, guestpower, network, snapshot
from tui.sandbox.sshhost import SSHHost, SSHHostError, end_leftover, end_orphans, remove_runtime_dir

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox

log = logging.getLogger("tui.sandbox")

# OpenSSH 9.2 logs the target of a forwarded (direct-tcpip) connection at DEBUG1 only (measured): the sandbox's
# servers log at that level so a test can prove a connection went through one of them as a jump host.
SSHD_LOG_LEVEL = "DEBUG1"


class VMs:
    """The SSH hosts of a sandbox's servers, by server id."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self._hosts: dict[str, SSHHost] = {}
        self._hosts_lock = threading.Lock()
        self._vm_locks: dict[str, threading.Lock] = {}  # one per server: its power actions never overlap

    def host(self, sid: str) -> SSHHost | None:
        with self._hosts_lock:
            return self._hosts.get(sid)

    def take_all(self) -> list[SSHHost]:
        """Every host, forgotten here (the sandbox stops or disconnects them)."""
        with self._hosts_lock:
            hosts, self._hosts = list(self._hosts.values()), {}
        return hosts

    def end_leftovers(self) -> list[int]:
        """Before the hosts start: end what an earlier run left listening — the sshd of any of this sandbox's
        VMs (by its pid file, verified on the process's command line), and orphaned sshd listeners of VMs whose
        folder is gone. An app killed with SIGKILL leaves none on Linux (its sshd are tied to it): this is for
        other systems and for what older versions left. Returns the pids ended."""
        ended = end_orphans()
        if self.sb.instances_dir.is_dir():
            for root in sorted(self.sb.instances_dir.iterdir()):
                pid = end_leftover(root)
                if pid is not None:
                    ended.append(pid)
        if ended:
            log.warning("sandbox: ended %d SSH host(s) an earlier run left listening (pids %s)", len(ended),
                        ", ".join(map(str, ended)))
        return ended

    def _vm_lock(self, sid: str) -> threading.Lock:
        with self._hosts_lock:
            return self._vm_locks.setdefault(sid, threading.Lock())

    def on(self, sid: str) -> str | None:
        """Start the server's SSH host (not under the lock). Returns an error message, or None."""
        with self._vm_lock(sid):  # two transitions of one server (e.g. a seeded build) must not start two hosts
            return self._on(sid)

    def _on(self, sid: str) -> str | None:
        state = self.sb.state
        with state.lock:
            srv = state.table("servers").get(sid)
            if srv is None or not srv["ssh"]:
                return None
            keys = [srv["public_key"]] if srv["public_key"] else []
            port = int(srv["ssh_port"] or 0)
            listen = network.listen_addresses(self.sb, srv["port_id"])
        with self._hosts_lock:
            host = self._hosts.get(sid)
        try:
            if host is None:
                snapshot.seed_disk(self.sb, sid)  # first boot: the frozen disk it was made from, if any
                host = SSHHost(self.sb.instances_dir / sid, keys, port, listen=listen, log_level=SSHD_LOG_LEVEL)
            guestpower.install_shim(host.root)
            cron.install_shim(host.root)
            boots = cron.booting(host)
            host.set_listen(listen)
            host.start()
            if boots:  # as cron does at boot: the crontab's @reboot lines
                cron.run_boot_jobs(host)
        except (SSHHostError, OSError) as e:
            log.warning("sandbox: SSH host of %s failed: %s", sid, e)
            return f"Build of instance {sid} aborted: the SSH host could not start: {e}"
        with self._hosts_lock:
            self._hosts[sid] = host
        self._publish_port(sid, host)
        return None

    def relisten(self, sid: str) -> None:
        """A floating IP was bound to or taken from the server: its sshd serves where its addresses say."""
        with self._vm_lock(sid):
            with self.sb.state.lock:
                srv = self.sb.state.table("servers").get(sid)
                listen = network.listen_addresses(self.sb, srv["port_id"]) if srv else []
            with self._hosts_lock:
                host = self._hosts.get(sid)
            if host is None or not listen:
                return
            try:
                host.set_listen(listen)
            except (SSHHostError, OSError) as e:
                # the port is another program's on the new address (127.0.0.1 is shared by every process): the
                # host moves to a port free on all of them and the server says so, as a re-created port would
                log.warning("sandbox: SSH host of %s cannot listen on %s (%s): moving it to another port", sid,
                            listen, e)
                host.stop()
                host.port = 0
                try:
                    host.start()
                except (SSHHostError, OSError) as again:
                    log.warning("sandbox: SSH host of %s did not start again: %s", sid, again)
                    return
                self._publish_port(sid, host)

    def _publish_port(self, sid: str, host: SSHHost) -> None:
        state = self.sb.state
        with state.lock:
            srv = state.table("servers").get(sid)
            if srv is not None:
                srv["ssh_port"] = host.port
                srv["metadata"][META_SSH_PORT] = str(host.port)
                srv["metadata"][META_SSH_USER] = host.user
                state.touch()

    def off(self, sid: str) -> None:
        with self._vm_lock(sid):
            with self._hosts_lock:
                host = self._hosts.get(sid)
            if host is not None:
                host.stop()

    def destroy(self, sid: str) -> None:
        with self._vm_lock(sid):
            with self._hosts_lock:
                host = self._hosts.pop(sid, None)
                self._vm_locks.pop(sid, None)
            if host is not None:
                host.stop()
        remove_runtime_dir(self.sb.instances_dir / sid)
        shutil.rmtree(self.sb.instances_dir / sid, ignore_errors=True)

    def host_public_key(self, sid: str) -> str | None:
        """The server's SSH host public key (what its console prints); None before its first boot."""
        with self._hosts_lock:
            host = self._hosts.get(sid)
        if host is not None:
            return host.host_public_key
        pub = self.sb.instances_dir / sid / "etc" / "ssh_host_ed25519_key.pub"
        if pub.exists():
            return " ".join(pub.read_text().split()[:2])
        with self.sb.state.lock:
            srv = self.sb.state.table("servers").get(sid)
            if srv is None or not srv["boots"]:
                return None
            if not srv.get("host_key"):  # a server without an SSH host still has a host key on its console
                srv["host_key"] = self.sb.generate_keypair(srv["name"])[1]
            return str(srv["host_key"])
