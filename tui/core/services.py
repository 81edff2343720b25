"""Glue between the cloud, the profile and the remote layers — shared by the app and the headless CLI.

Blocking work (cloud calls) and async work (SSH) are kept apart: `RemoteContext.prepare` is blocking (run it in a
thread), everything else here is async or pure.
"""

from __future__ import annotations

import getpass
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from tui.conventions import IMPORT_KEY_PREFIX
from tui.core import paths
from tui.core.cloud.base import Cloud, CloudError, Conflict, LaunchSpec
from tui.core.config import Settings
from tui.core.events import HostKeysUnpinned
from tui.core.guide import SetupSpec, VolumeSpec
from tui.core.hints import command
from tui.core.keys import KeyStore
from tui.core.models import Instance, Volume
from tui.core.remote.commands import CommandLog
from tui.core.remote.connection import SSHTarget
from tui.core.remote.hostkeys import ConsoleHostKeys, parse_console_host_keys

log = logging.getLogger("tui.core.services")


@dataclass(frozen=True, slots=True)
class RemoteContext:
    """Everything needed to work on one instance over SSH, gathered from the cloud once."""

    instance: Instance
    target: SSHTarget
    data_volumes: tuple[Volume, ...] = ()
    unpinned: str = ""  # why the console log (for host-key pinning) could not be read: trust on first use instead

    def unpinned_event(self) -> HostKeysUnpinned | None:
        """What to tell the user when the host keys are not pinned because the console log was not read."""
        return HostKeysUnpinned(self.instance.id, self.instance.name, self.unpinned) if self.unpinned else None

    @property
    def pinned(self) -> ConsoleHostKeys | None:
        return self.target.pinned




def import_public_key(cloud: Cloud, pub: Path, say: Callable[[str], None]) -> tuple[str, Path | None]:
    """Import `pub` as a key pair named after the file (once); (key pair name, the matching private key if any).
    The private key is never read or copied: only its path is remembered for SSH."""
    public = pub.read_text(encoding="utf-8").strip()
    name = re.sub(r"[^A-Za-z0-9._-]", "-", f"{pub.name.removesuffix('.pub')}-{getpass.getuser()}")[:63]
    if name not in {k.name for k in cloud.list_keypairs()}:
        say(f"Importing {pub} as key pair {name}")
        cloud.import_keypair(name, public)
    private = pub.with_name(pub.name.removesuffix(".pub"))
    return name, private if private.exists() else None


def launch_instance(cloud: Cloud, spec: LaunchSpec, say: Callable[[str], None],
                    store: KeyStore | None = None, wait: bool = True) -> Instance:
    """Launch the way the guide wants it, for the app and the CLI alike: the app's own key pair when none is
    named (generated once, imported once), an SSH rule in the default security group, the boot volume's fate said
    out loud, and the private key remembered for the new instance. Blocking."""
    store = store or KeyStore()
    key_name = spec.key_name
    key_path: Path | None = store.private_path(key_name) if key_name else None
    if key_name.startswith(IMPORT_KEY_PREFIX):
        key_name, key_path = import_public_key(cloud, Path(key_name[len(IMPORT_KEY_PREFIX):]).expanduser(), say)
    elif not key_name:
        key_name, key_path, public = store.app_key()
        if key_name not in {k.name for k in cloud.list_keypairs()}:
            say(f"Importing the app's own key pair as {key_name} (private key: {key_path})")
            cloud.import_keypair(key_name, public)
    if cloud.ensure_ssh_rule():
        say("Added an SSH (tcp/22) rule to the 'default' security group")
    fate = "deleted with the instance" if spec.delete_volume_on_termination else "kept when the instance is deleted"
    say(f"Boot volume: {spec.volume_size_gb} GB of your volume quota, {fate}")
    inst = cloud.launch(replace(spec, key_name=key_name), progress=say, wait=wait)
    if key_path is not None and key_path.exists():
        store.remember(inst.id, key_path)
    return inst


class Services:
    """Maps the profile onto the remote layers: which key, which host keys, which setup settings."""

    def __init__(self, settings: Settings, keystore: KeyStore | None = None, state_dir: Path | None = None,
                 known_hosts: Path | None = None) -> None:
        self.settings = settings
        self.keystore = keystore or KeyStore()
        self.state_dir = state_dir or paths.state_dir()
        self.known_hosts = known_hosts or paths.data_dir() / "known_hosts"

    def key_path(self, inst: Instance) -> Path | None:
        """The profile's key, else the one remembered for the instance, else the app's own key (when it exists);
        None lets the agent / ~/.ssh/config decide. An instance launched with the app's own key pair gets that
        key's path even when the file is gone, so the login names the missing file instead of failing with the
        agent's keys."""
        if self.settings.ssh.key_path:
            return Path(self.settings.ssh.key_path).expanduser()
        remembered = self.keystore.key_for(inst.id)
        if remembered is not None and remembered.exists():
            return remembered
        own = self.keystore.private_path(inst.key_name) if inst.key_name else None
        if own is not None and own.exists():
            return own
        app = self.keystore.private_path("cades-tui")
        return app if inst.key_name.startswith("cades-tui-") else None

    def target(self, inst: Instance, console_log: str = "") -> SSHTarget:
        pinned = parse_console_host_keys(console_log) if console_log else None
        ssh = self.settings.ssh
        return SSHTarget.for_instance(
            inst, ssh.user, key_path=self.key_path(inst), known_hosts=self.known_hosts,
            jump=ssh.jump_host or None, use_ssh_config=ssh.use_ssh_config, pinned=pinned or None,
        )

    def prepare(self, cloud: Cloud, name_or_id: str) -> RemoteContext:
        """Blocking: the instance, its console log (for host-key pinning) and its data volumes."""
        inst = cloud.get_instance(name_or_id)
        if inst.status != "ACTIVE":
            raise Conflict(f"instance {inst.name} is {inst.status}",
                           f"start it first (p, or `{command('start', inst.name)}`)")
        unpinned = ""
        try:
            console = cloud.console_log(inst.id)
        except Exception as exc:  # no console log on this cloud: trust on first use — said, never silently
            console, unpinned = "", str(exc).strip() or type(exc).__name__
            log.warning("could not read the console log of %s (%s): host keys not pinned, trust on first use",
                        inst.name, unpinned)
        volumes = tuple(v for v in cloud.list_volumes() if inst.id in v.attached_to and not v.bootable)
        target = self.target(inst, console)
        head = self.cluster_head(cloud, inst)
        if head is not None:  # a Dask worker has no public address: reached through its head, as the app does
            via = self.prepare(cloud, head.id)
            target = replace(target, via=via.target, jump=None)
            if via.unpinned:
                unpinned = "; ".join(x for x in (unpinned, f"its head {head.name}: {via.unpinned}") if x)
        return RemoteContext(instance=inst, target=target, data_volumes=volumes, unpinned=unpinned)

    @staticmethod
    def cluster_head(cloud: Cloud, inst: Instance) -> Instance | None:
        """The head of a cluster worker (`HEAD-wN` without a public address, its head having one), else None."""
        m = re.fullmatch(r"(.+)-w\d+", inst.name)
        if m is None or inst.public_ip:
            return None
        try:
            head = cloud.get_instance(m.group(1))
        except CloudError:
            return None
        return head if head.public_ip and head.id != inst.id else None

    def setup_spec(self, ctx: RemoteContext | None = None, env: tuple[tuple[str, str], ...] = ()) -> SetupSpec:
        volume = None
        if ctx is not None and ctx.data_volumes:
            v = ctx.data_volumes[0]
            volume = VolumeSpec(volume_id=v.id, device=v.device)
        spec = SetupSpec.from_settings(self.settings, env=env, volume=volume)
        if ctx is None:
            return spec
        from tui.core.autostop.service import setup_config  # the profile's autostop, armed by setup

        config, note = setup_config(self.settings, ctx.instance)
        return replace(spec, autostop_config=config, autostop_note=note)

    def command_log(self, inst: Instance) -> CommandLog:
        return CommandLog.for_instance(self.state_dir, inst.id)
