"""The instances by name in other tools (`ssh NAME`, scp, rsync, VS Code Remote-SSH): a generated OpenSSH config.

One `Host` per instance with the app's key (`IdentitiesOnly yes`) and the app's pinned known_hosts
(`UserKnownHostsFile`, `HostKeyAlias` = the `[ip]:port` entry the app itself writes, `StrictHostKeyChecking yes`);
a cluster worker goes through its head (`ProxyJump HEAD`). `plan_hosts` and `render` are pure; `write_config`
writes atomically (0600) only when the text changed; `Keeper` rewrites it after the instances changed — only
once the user made it (`cades-tui ssh-config`), never a surprise write into ~/.ssh. The `Include` line that puts
it into ~/.ssh/config is `tui.core.sshinclude`'s; the engine's side, `tui.core.sshkeep`.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from tui.core import paths
from tui.core.models import Instance

Forwards = Mapping[str, Sequence[tuple[int, str, int]]]  # instance name -> (local port, remote host, remote port)
SUFFIX = ".config"
KEEPALIVE = (15, 3)  # as the app's own `ssh` (ServerAliveInterval, ServerAliveCountMax)
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_WORKER_RE = re.compile(r"(.+)-w\d+")
_RESERVED = {"localhost"}


@dataclass(frozen=True, slots=True)
class SshHost:
    """One `Host` block: how OpenSSH reaches an instance by its name."""

    name: str
    hostname: str
    port: int
    user: str
    identity: PurePath | None = None  # the app's key for it; None: OpenSSH's usual keys (agent, ~/.ssh)
    jump: str = ""  # ProxyJump: the head's name (a cluster worker) or the profile's jump host
    forwards: tuple[tuple[int, str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Skipped:
    """An instance left out of the config, and why (said in the file and by the command)."""

    name: str
    why: str


@dataclass(frozen=True, slots=True)
class Plan:
    hosts: tuple[SshHost, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    unverified: tuple[str, ...] = field(default=())  # names whose host key the app has not verified yet


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a `Host` alias, or None. OpenSSH reads `*`, `?`, `!`, `,` and spaces in a Host line as
    patterns; a name with a dot could shadow a real host (an instance named `github.com` would catch `git push`),
    and the config is included first in ~/.ssh/config — so only letters, digits, `-` and `_` pass."""
    if name.lower() in _RESERVED:
        return f"{name!r} would shadow this machine's own name"
    if _NAME_RE.fullmatch(name):
        return None
    bad = next((c for c in name if not (c.isascii() and (c.isalnum() or c in "-_"))), "")
    if "." in name:
        return f"{name!r} has a '.': it could shadow a real host name (like github.com)"
    if bad:
        return f"{name!r} has {bad!r}, which OpenSSH reads as part of a pattern or a separator"
    return f"{name!r} must start with a letter or digit and have at most 63 characters"


def cluster_heads(instances: Sequence[Instance]) -> dict[str, Instance]:
    """Worker id -> its head, by the app's rule (`Services.cluster_head`): `HEAD-wN` without a public address whose
    head has one."""
    by_name: dict[str, Instance] = {}
    for inst in instances:
        by_name.setdefault(inst.name, inst)
    heads: dict[str, Instance] = {}
    for inst in instances:
        m = _WORKER_RE.fullmatch(inst.name)
        head = by_name.get(m.group(1)) if m and not inst.public_ip else None
        if head is not None and head.public_ip and head.id != inst.id:
            heads[inst.id] = head
    return heads


def host_key_alias(host: str, port: int) -> str:
    """The app's known_hosts spelling of host:port (`tui.core.remote.hostkeys.host_pattern`, OpenSSH's)."""
    return host if port == 22 else f"[{host}]:{port}"


def known_patterns(known_hosts: Path) -> set[str]:
    """The host patterns of a known_hosts file (first field of each line)."""
    try:
        text = known_hosts.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    out: set[str] = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and not line.startswith(("#", "@")):
            out.update(parts[0].split(","))
    return out


def plan_hosts(instances: Sequence[Instance], *, user: str, key_for: Callable[[Instance], PurePath | None],
               known: Collection[str] = (), jump_host: str = "", forwards: Forwards | None = None) -> Plan:
    """The Host blocks for these instances (pure): the ones with an address, in name order; names OpenSSH would
    misread, and second instances of one name, are skipped with why."""
    heads = cluster_heads(instances)
    hosts: list[SshHost] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    unverified: list[str] = []
    for inst in sorted(instances, key=lambda i: (i.name.lower(), i.id)):
        problem = name_problem(inst.name)
        head = heads.get(inst.id)
        if problem is None and inst.name.lower() in seen:
            problem = f"another instance is named {inst.name!r} too (OpenSSH takes the first)"
        if problem is None and not inst.ip:
            problem = f"{inst.name!r} has no address yet"
        if problem is None and head is not None and name_problem(head.name) is not None:
            problem = f"its head {head.name!r} has a name OpenSSH cannot use"
        if problem is not None:
            skipped.append(Skipped(inst.name, problem))
            continue
        seen.add(inst.name.lower())
        if host_key_alias(inst.ip, inst.ssh_port) not in known:  # the address the app logs in at, as it pins it
            unverified.append(inst.name)
        hosts.append(SshHost(inst.name, inst.ip, inst.ssh_port, inst.ssh_user or user, key_for(inst),
                             head.name if head is not None else jump_host,
                             tuple((forwards or {}).get(inst.name, ()))))
    return Plan(tuple(hosts), tuple(skipped), tuple(unverified))


def config_word(path: PurePath, home: PurePath) -> str:
    """A path as an OpenSSH config argument: `~/…` under HOME, forward slashes (Windows OpenSSH takes them), `%`
    doubled (OpenSSH expands `%` tokens in file names), in double quotes when it has spaces."""
    try:
        text = "~/" + path.relative_to(home).as_posix()
    except ValueError:
        text = path.as_posix()
    if '"' in text or "\n" in text:
        raise ValueError(f"{path}: a file name with a double quote or a line break cannot go into an ssh config")
    text = text.replace("%", "%%")
    return f'"{text}"' if any(c in text for c in " \t#") else text


def render(plan: Plan, *, known_hosts: PurePath, home: PurePath, made_by: str, cloud: str) -> str:
    """The config file's text (pure): a header saying who made it, then one Host block per instance."""
    lines = [
        f"# Generated by cades-tui for the instances of cloud {cloud!r}: do not edit (rewritten when they change).",
        f"# Made by `{made_by}`; `{made_by} --uninstall` removes it from ~/.ssh/config.",
        "# Host keys: only those the app verified (pinned from the console log, or accepted once).",
    ]
    for s in plan.skipped:
        lines.append(f"# skipped: {s.why}")
    kh = config_word(known_hosts, home)
    for h in plan.hosts:
        lines += ["", f"Host {h.name}", f"    HostName {h.hostname}", f"    Port {h.port}", f"    User {h.user}"]
        if h.identity is not None:
            lines += [f"    IdentityFile {config_word(h.identity, home)}", "    IdentitiesOnly yes"]
        if h.jump:
            lines.append(f"    ProxyJump {h.jump}")
        lines += [f"    HostKeyAlias {host_key_alias(h.hostname, h.port)}", f"    UserKnownHostsFile {kh}",
                  "    GlobalKnownHostsFile none", "    StrictHostKeyChecking yes", "    UpdateHostKeys no",
                  f"    ServerAliveInterval {KEEPALIVE[0]}", f"    ServerAliveCountMax {KEEPALIVE[1]}"]
        lines += [f"    LocalForward 127.0.0.1:{lp} {_forward_host(rh)}:{rp}" for lp, rh, rp in h.forwards]
    return "\n".join(lines) + "\n"


def _forward_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def config_path(cloud: str) -> Path:
    """The generated file for this cloud: ~/.ssh/cades-tui/CLOUD.config (one per cloud, one Include for all)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", cloud) or "cloud"
    return paths.ssh_config_dir() / f"{safe}{SUFFIX}"


def write_config(path: Path, text: str) -> bool:
    """Write `text` atomically with mode 0600 (its folder 0700); False when the file already says exactly that."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    paths.ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


class Keeper:
    """The generated file of one cloud, kept in step with its instances once the user has made it."""

    def __init__(self, *, cloud: str, user: str, key_for: Callable[[Instance], PurePath | None], known_hosts: Path,
                 made_by: str, jump_host: str = "", path: Path | None = None,
                 forwards: Callable[[], Forwards] | None = None) -> None:
        self.cloud, self.user, self.key_for, self.known_hosts = cloud, user, key_for, known_hosts
        self.made_by, self.jump_host = made_by, jump_host
        self.path = path or config_path(cloud)
        self.forwards = forwards

    @property
    def enabled(self) -> bool:
        """The user made the file (`cades-tui ssh-config`): from then on it follows the instances."""
        return self.path.is_file()

    def plan(self, instances: Sequence[Instance]) -> Plan:
        return plan_hosts(instances, user=self.user, key_for=self.key_for, known=known_patterns(self.known_hosts),
                          jump_host=self.jump_host, forwards=self.forwards() if self.forwards else None)

    def text(self, plan: Plan) -> str:
        return render(plan, known_hosts=self.known_hosts, home=Path.home(), made_by=self.made_by, cloud=self.cloud)

    def write(self, instances: Sequence[Instance], write: bool = True) -> tuple[Plan, str, bool]:
        """Write the file now (this enables following): the plan, the text, whether the file changed."""
        plan = self.plan(instances)
        text = self.text(plan)
        return plan, text, write and write_config(self.path, text)

    def follow(self, instances: Sequence[Instance]) -> bool:
        """Rewrite the file when it is enabled and the instances changed what it says; True when written."""
        return self.enabled and self.write(instances)[2]


@dataclass(frozen=True, slots=True)
class Report:
    """What `Engine.sshconfig.write` did: the file, whether it changed, its hosts (and the skipped), whether the
    Include line is in ~/.ssh/config, and (under WSL) where the Windows side's file is."""

    path: Path
    changed: bool
    plan: Plan
    include: str
    installed: bool
    text: str = ""
    wsl_note: str | None = None
