"""The guide's setup steps (its steps 2-3) as data: each has describe / check / apply.

Every command is a POSIX shell snippet; every value in it is quoted with `shlex.quote` (paths under the
remote HOME become `"$HOME"/'rest'`). Steps run commands only through `ctx.sh`, an `Executor`, so a dry
run prints the same commands it would run.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tui.core.errors import CadesError
from tui.core.guide.executor import Executor
from tui.core.guide.settings import InstallMethod, SetupSpec, VolumeSpec
from tui.core.remote.commands import CommandResult, LineSink, quote_args

ApproveFormat = Callable[[str, str], Awaitable[bool]]  # (device, size) -> may we format it?
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CONFIG_FILE = "~/.jupyter/jupyter_server_config.json"
_DIST_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class StepFailed(CadesError):
    """A step's command failed; `result` holds its exit status and last output lines."""

    def __init__(self, message: str, result: CommandResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True, slots=True)
class HostFacts:
    os: str = "{os}"  # uname -s; placeholders until detected (dry run)
    arch: str = "{arch}"  # uname -m
    distro: str = ""  # /etc/os-release ID VERSION_ID
    home: str = "$HOME"
    user: str = ""
    package_manager: str = ""  # apt-get | dnf | yum | ""

    @classmethod
    def parse(cls, output: str) -> HostFacts:
        values = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
        return cls(
            os=values.get("os") or "{os}",
            arch=values.get("arch") or "{arch}",
            distro=values.get("distro", "").strip(),
            home=values.get("home") or "$HOME",
            user=values.get("user", ""),
            package_manager=values.get("pkg", ""),
        )


def _no_output(lines: list[str]) -> None:
    return None


@dataclass
class SetupContext:
    """What the steps share while the pipeline runs."""

    settings: SetupSpec
    sh: Executor
    approve_format: ApproveFormat | None = None
    facts: HostFacts = field(default_factory=HostFacts)
    out: LineSink = _no_output  # set by the runner for each step

    async def probe(self, command: str, input: str | None = None) -> CommandResult:
        """A read-only command (a check); its output is not streamed."""
        return await self.sh.run(command, None, input=input, probe=True)

    async def do(self, command: str, input: str | None = None, what: str = "") -> CommandResult:
        """A changing command; output streams to the log; a non-zero exit raises `StepFailed`."""
        result = await self.sh.run(command, self.out, input=input)
        if not result.ok:
            raise StepFailed(f"{what or 'command'} failed (exit {result.exit_status})", result)
        return result

    def note(self, line: str) -> None:
        self.out([line])


def rpath(path: str) -> str:
    """A shell word for a remote path: `~` and relative paths are under the remote HOME."""
    if path in ("~", ""):
        return '"$HOME"'
    if path.startswith("~/"):
        path = path[2:]
    elif path.startswith("/"):
        return shlex.quote(path)
    return '"$HOME"/' + shlex.quote(path or ".")


def abspath(path: str, home: str) -> str:
    """The remote path as an absolute path string (for config files)."""
    if path in ("~", ""):
        return home
    if path.startswith("/"):
        return path
    return home.rstrip("/") + "/" + (path[2:] if path.startswith("~/") else path)


SUDO_SETUP = (
    'if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; '
    'else echo "root is needed for this and sudo asks for a password: run it by hand, then run setup '
    'again" >&2; exit 1; fi\n'
)


def _install_packages_script(packages: str) -> str:
    """Install OS packages (first that works of the `|`-separated alternatives) with the package manager."""
    alternatives = " ".join(shlex.quote(p) for p in packages.split("|"))
    return (
        SUDO_SETUP + f"for pkg in {alternatives}; do\n"
        "  if command -v apt-get >/dev/null 2>&1; then\n"
        '    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "$pkg" || '
        '{ $SUDO apt-get update && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "$pkg"; } '
        "&& exit 0\n"
        "  elif command -v dnf >/dev/null 2>&1; then\n"
        '    $SUDO dnf install -y "$pkg" && exit 0\n'
        "  elif command -v yum >/dev/null 2>&1; then\n"
        '    $SUDO yum install -y "$pkg" && exit 0\n'
        "  else\n"
        '    echo "no apt-get, dnf or yum on this system: install $pkg by hand" >&2; exit 1\n'
        "  fi\n"
        "done\n"
        "exit 1\n"
    )


class Step:
    """One idempotent step: `check` says whether it is already done, `apply` does it."""

    name = ""
    changes = True  # False for read-only steps (not listed as "did" in the summary)

    def describe(self, ctx: SetupContext) -> str:
        raise NotImplementedError

    async def check(self, ctx: SetupContext) -> bool:
        raise NotImplementedError

    async def apply(self, ctx: SetupContext) -> None:
        raise NotImplementedError


class WaitForSSH(Step):
    name = "ssh"

    def describe(self, ctx: SetupContext) -> str:
        return f"Wait for SSH (up to {ctx.settings.ssh_wait_seconds:.0f} s)"

    async def check(self, ctx: SetupContext) -> bool:
        return ctx.sh.is_connected()

    async def apply(self, ctx: SetupContext) -> None:
        await ctx.sh.connect(ctx.settings.ssh_wait_seconds)
        await ctx.do('echo "connected as $(id -un) on $(uname -n)"', what="the first command")


DETECT_SCRIPT = (
    'echo "os=$(uname -s)"\n'
    'echo "arch=$(uname -m)"\n'
    'echo "home=$HOME"\n'
    'echo "user=$(id -un)"\n'
    'if [ -r /etc/os-release ]; then . /etc/os-release; echo "distro=${ID:-} ${VERSION_ID:-}"; fi\n'
    "for pm in apt-get dnf yum; do if command -v $pm >/dev/null 2>&1; then echo pkg=$pm; break; fi; done\n"
)


class DetectSystem(Step):
    """Read-only: always runs (it is one quick command) so later steps know the OS, arch and HOME."""

    name = "detect"
    changes = False

    def describe(self, ctx: SetupContext) -> str:
        return "Detect the OS, architecture and home directory"

    async def check(self, ctx: SetupContext) -> bool:
        return False

    async def apply(self, ctx: SetupContext) -> None:
        result = await ctx.do(DETECT_SCRIPT, what="detection")
        if not ctx.sh.dry_run:
            ctx.facts = HostFacts.parse(result.output)


class EnsureScreen(Step):
    name = "screen"

    def describe(self, ctx: SetupContext) -> str:
        return "Ensure screen (or tmux) is installed, to keep Jupyter running after you disconnect"

    async def check(self, ctx: SetupContext) -> bool:
        result = await ctx.probe("command -v screen || command -v tmux")
        return result.ok

    async def apply(self, ctx: SetupContext) -> None:
        await ctx.do(_install_packages_script("screen|tmux"), what="installing screen")


def dist_names(packages: tuple[str, ...]) -> list[str]:
    """Distribution names of requirement strings (URLs and paths have none and are skipped)."""
    names = []
    for pkg in packages:
        m = _DIST_NAME_RE.match(pkg)
        if m and "://" not in pkg and not pkg.lstrip().startswith((".", "/", "~")):
            names.append(m.group(1))
    return names


class InstallPythonEnv(Step):
    """The Python environment with Jupyter: a uv venv (default) or a Miniforge/Anaconda prefix."""

    name = "python"

    def describe(self, ctx: SetupContext) -> str:
        s = ctx.settings
        how = {
            InstallMethod.UV: "a uv virtual environment",
            InstallMethod.MINIFORGE: "Miniforge (conda)",
            InstallMethod.ANACONDA: "Anaconda (as the guide does)",
        }[s.method]
        return f"Install Jupyter and {len(s.all_packages)} packages in {how} at {s.prefix}"

    def check_command(self, ctx: SetupContext) -> str:
        py = rpath(ctx.settings.prefix) + "/bin/python"
        names = quote_args(dist_names(ctx.settings.all_packages))
        return (
            f"test -x {py} && {py} -c "
            + shlex.quote("import sys, importlib.metadata as m\nfor n in sys.argv[1:]: m.version(n)")
            + f" {names}"
        )

    async def check(self, ctx: SetupContext) -> bool:
        return (await ctx.probe(self.check_command(ctx))).ok

    def apply_command(self, ctx: SetupContext) -> str:
        if ctx.settings.method is InstallMethod.UV:
            return self._uv_script(ctx)
        return self._conda_script(ctx)

    async def apply(self, ctx: SetupContext) -> None:
        await ctx.do(self.apply_command(ctx), what=f"installing the Python environment ({ctx.settings.method})")

    @staticmethod
    def _uv_script(ctx: SetupContext) -> str:
        prefix = rpath(ctx.settings.prefix)
        pkgs = quote_args(ctx.settings.all_packages)
        return (
            "set -e\n"
            f"if [ -f {CA_BUNDLE} ]; then export SSL_CERT_FILE={CA_BUNDLE}; fi\n"
            f"if [ ! -x {prefix}/bin/python ]; then\n"
            f"  fresh=1; if [ -e {prefix} ]; then fresh=0; fi\n"
            f"  if command -v uv >/dev/null 2>&1; then uv venv {prefix}\n"
            f"  elif ! python3 -m venv {prefix}; then\n"
            f'    if [ "$fresh" = 1 ]; then rm -rf {prefix}; fi  # only what this step created\n'
            "    echo 'python3 -m venv failed: installing python3-venv' >&2\n"
            f"    ( {_subshell(_install_packages_script('python3-venv'))} )\n"
            f"    python3 -m venv {prefix}\n"
            "  fi\n"
            "fi\n"
            "if command -v uv >/dev/null 2>&1; then UV=uv\n"
            "else\n"
            f"  if [ ! -x {prefix}/bin/uv ]; then\n"
            f"    {prefix}/bin/python -m pip --version >/dev/null 2>&1 || {prefix}/bin/python -m ensurepip\n"
            f"    {prefix}/bin/python -m pip install --disable-pip-version-check --progress-bar off uv\n"
            "  fi\n"
            f"  UV={prefix}/bin/uv\n"
            "fi\n"
            f'"$UV" pip install --python {prefix}/bin/python {pkgs}\n'
        )

    @staticmethod
    def _conda_script(ctx: SetupContext) -> str:
        s = ctx.settings
        prefix = rpath(s.prefix)
        url = shlex.quote(s.installer(ctx.facts.os, ctx.facts.arch))
        pkgs = quote_args(s.all_packages)
        return (
            "set -e\n"
            f"if [ -f {CA_BUNDLE} ]; then export SSL_CERT_FILE={CA_BUNDLE}; fi\n"
            f"if [ ! -x {prefix}/bin/python ]; then\n"
            "  tmp=$(mktemp -d)\n  trap 'rm -rf \"$tmp\"' EXIT\n"
            f"  echo Downloading {url}\n"
            f'  if command -v curl >/dev/null 2>&1; then curl -fsSL -o "$tmp/installer.sh" {url}\n'
            f'  elif command -v wget >/dev/null 2>&1; then wget -q -O "$tmp/installer.sh" {url}\n'
            "  else echo 'neither curl nor wget is installed' >&2; exit 1; fi\n"
            f'  if [ -e {prefix} ]; then bash "$tmp/installer.sh" -b -u -p {prefix}\n'
            f'  else bash "$tmp/installer.sh" -b -p {prefix}; fi\n'
            "fi\n"
            f"if [ -x {prefix}/bin/conda ]; then {prefix}/bin/conda install -y {pkgs}\n"
            f"else {prefix}/bin/python -m pip install --disable-pip-version-check --progress-bar off {pkgs}\n"
            "fi\n"
        )


def _subshell(script: str) -> str:
    return script.replace("\n", "\n    ").rstrip()


class WriteJupyterConfig(Step):
    """Server config as JSON: no browser, 127.0.0.1, the port, root_dir = workspace; token auth stays on
    (no token is written: Jupyter generates one per start; an empty token from an older config is removed).
    """

    name = "jupyter-config"

    def describe(self, ctx: SetupContext) -> str:
        return f"Write the Jupyter server config ({CONFIG_FILE}: port {ctx.settings.jupyter_port}, 127.0.0.1)"

    def wanted(self, ctx: SetupContext) -> dict[str, object]:
        return {
            "open_browser": False,
            "ip": "127.0.0.1",
            "port": ctx.settings.jupyter_port,
            "root_dir": abspath(ctx.settings.workspace, ctx.facts.home),
        }

    async def _current(self, ctx: SetupContext) -> dict[str, object] | None:
        result = await ctx.probe(f"cat {rpath(CONFIG_FILE)}")
        if not result.ok:
            return None
        try:
            data = json.loads(result.output)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    async def check(self, ctx: SetupContext) -> bool:
        current = await self._current(ctx)
        if current is None:
            return False
        server = current.get("ServerApp")
        if not isinstance(server, dict):
            return False
        wanted = self.wanted(ctx)
        return all(server.get(k) == v for k, v in wanted.items()) and not _auth_disabled(current)

    def merged(self, ctx: SetupContext, current: dict[str, object] | None) -> dict[str, object]:
        config: dict[str, object] = dict(current or {})
        server = config.get("ServerApp")
        server = dict(server) if isinstance(server, dict) else {}
        server.update(self.wanted(ctx))
        if server.get("token") == "":
            del server["token"]
        config["ServerApp"] = server
        ident = config.get("IdentityProvider")
        if isinstance(ident, dict) and ident.get("token") == "":
            config["IdentityProvider"] = {k: v for k, v in ident.items() if k != "token"}
        return config

    async def apply(self, ctx: SetupContext) -> None:
        current = None if ctx.sh.dry_run else await self._current(ctx)
        text = json.dumps(self.merged(ctx, current), indent=2, sort_keys=True) + "\n"
        path = rpath(CONFIG_FILE)
        directory = rpath(CONFIG_FILE.rsplit("/", 1)[0])
        await ctx.do(
            f"mkdir -p {directory} && umask 077 && cat > {path}.tmp && mv -f {path}.tmp {path} && echo wrote {path}",
            input=text,
            what="writing the Jupyter config",
        )


def _auth_disabled(config: dict[str, object]) -> bool:
    for section in ("ServerApp", "IdentityProvider"):
        values = config.get(section)
        if isinstance(values, dict) and values.get("token") == "":
            return True
    return False


class CreateWorkspace(Step):
    name = "workspace"

    def describe(self, ctx: SetupContext) -> str:
        return f"Create the workspace folder {ctx.settings.workspace} (Jupyter's root)"

    async def check(self, ctx: SetupContext) -> bool:
        return (await ctx.probe(f"test -d {rpath(ctx.settings.workspace)}")).ok

    async def apply(self, ctx: SetupContext) -> None:
        ws = rpath(ctx.settings.workspace)
        await ctx.do(f"mkdir -p {ws} && echo created {ws}", what="creating the workspace")


@dataclass(frozen=True, slots=True)
class BlockDevice:
    path: str
    size: str
    fstype: str
    mountpoints: tuple[str, ...]
    children: int


def parse_lsblk(output: str) -> BlockDevice | None:
    """The first device of `lsblk -J -o PATH,SIZE,FSTYPE,MOUNTPOINTS,TYPE DEV` output."""
    try:
        devices = json.loads(output).get("blockdevices") or []
    except ValueError:
        return None
    if not devices:
        return None
    d = devices[0]
    points = d.get("mountpoints") or ([d["mountpoint"]] if d.get("mountpoint") else [])
    children = d.get("children") or []
    points = [p for p in points if p] + [p for c in children for p in (c.get("mountpoints") or []) if p]
    return BlockDevice(
        d.get("path") or "", str(d.get("size") or ""), d.get("fstype") or "", tuple(points), len(children)
    )


def _device_candidates(volume: VolumeSpec) -> list[str]:
    """Where Linux shows a Cinder volume: by-id links (virtio truncates ids to 20 chars), then the hint."""
    vid = volume.volume_id
    out = [f"/dev/disk/by-id/virtio-{vid[:20]}", f"/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_{vid}"]
    return [*out, volume.device] if volume.device else out


class MountVolume(Step):
    """Mount an attached cloud volume and persist it in /etc/fstab; format it only when empty and approved."""

    name = "volume"

    def describe(self, ctx: SetupContext) -> str:
        v = ctx.settings.volume
        return "Mount the attached volume" + (f" at {v.mount_point}" if v else " (none attached)")

    def find_command(self, volume: VolumeSpec) -> str:
        cands = " ".join(shlex.quote(c) for c in _device_candidates(volume))
        return (
            f'for d in {cands}; do if [ -b "$d" ]; then dev=$(readlink -f "$d"); '
            'lsblk -J -b -o PATH,SIZE,FSTYPE,MOUNTPOINTS,TYPE "$dev"; exit 0; fi; done; exit 1'
        )

    async def _device(self, ctx: SetupContext, volume: VolumeSpec) -> BlockDevice | None:
        result = await ctx.probe(self.find_command(volume))
        return parse_lsblk(result.output) if result.ok else None

    async def check(self, ctx: SetupContext) -> bool:
        volume = ctx.settings.volume
        if volume is None:
            ctx.note("no extra volume attached")
            return True
        dev = await self._device(ctx, volume)
        if dev is None:
            return False
        fstab = await ctx.probe(f"grep -qs -- {shlex.quote(' ' + volume.mount_point + ' ')} /etc/fstab")
        return volume.mount_point in dev.mountpoints and fstab.ok

    async def apply(self, ctx: SetupContext) -> None:
        volume = ctx.settings.volume
        assert volume is not None  # check() returned True otherwise
        dev = await self._device(ctx, volume)
        if dev is None and not ctx.sh.dry_run:
            raise StepFailed(f"volume {volume.volume_id} is attached but no device for it was found")
        dev = dev or BlockDevice(volume.device or "/dev/vdb", "?", "", (), 0)
        if dev.mountpoints and volume.mount_point not in dev.mountpoints:
            raise StepFailed(f"{dev.path} is already mounted at {', '.join(dev.mountpoints)}; not touching it")
        if dev.children:
            raise StepFailed(f"{dev.path} has partitions; mount the one you want by hand")
        fmt = ""
        if not dev.fstype:
            approved = ctx.approve_format is not None and await ctx.approve_format(dev.path, dev.size)
            if not approved and not ctx.sh.dry_run:
                raise StepFailed(f"{dev.path} ({dev.size} bytes) is empty; formatting it needs your approval")
            fmt = format_if_empty(dev.path)
        mp, devq = shlex.quote(volume.mount_point), shlex.quote(dev.path)
        await ctx.do(
            "set -e\n"
            + SUDO_SETUP
            + fmt
            + f"$SUDO mkdir -p {mp}\n"
            + f"mountpoint -q {mp} || $SUDO mount {devq} {mp}\n"
            + f"uuid=$($SUDO blkid -s UUID -o value {devq}); fstype=$($SUDO blkid -s TYPE -o value {devq})\n"
            + f"grep -qs -- {shlex.quote(' ' + volume.mount_point + ' ')} /etc/fstab || "
            + f'echo "UUID=$uuid {volume.mount_point} $fstype defaults,nofail 0 2" | $SUDO tee -a /etc/fstab\n'
            + f'$SUDO chown "$(id -u):$(id -g)" {mp}\n',
            what="mounting the volume",
        )


def format_if_empty(device: str) -> str:
    """mkfs.ext4 on `device` only if it has no filesystem *now*: checked again in the command that formats (under
    the VM's setup lock), as another terminal's setup of the VM may have formatted and filled it since this run
    looked."""
    q = shlex.quote(device)
    return f"[ -n \"$($SUDO blkid -s TYPE -o value {q} || true)\" ] || $SUDO mkfs.ext4 -q {q}\n"


class InstallAutostop(Step):
    """The autostop watchdog (`tui.core.autostop`): installed on every VM; armed when the profile's
    `autostop.idle` is not off (`cades-tui autostop NAME` arms, changes or removes it later), and then started at
    every boot by the user's crontab too (where cron is installed)."""

    name = "autostop"

    def describe(self, ctx: SetupContext) -> str:
        armed = "and arm it (the profile's autostop)" if ctx.settings.autostop_config else "(off until armed)"
        return f"Install the autostop watchdog in ~/.cades-tui/autostop {armed}"

    async def check(self, ctx: SetupContext) -> bool:
        import hashlib

        from tui.core.autostop import service as autostop

        config = ctx.settings.autostop_config
        wanted = (f' && [ "$(cat {autostop.DIR}/config.json)" = {shlex.quote(config)} ] && {autostop.RUNNING}'
                  f' && {{ {autostop.AT_BOOT}; }} | grep -qv at_boot=no-line' if config else "")
        digest = hashlib.sha256(autostop.boot_script().encode()).hexdigest()
        boot = f' && [ "$(sha256sum < {autostop.DIR}/boot.sh)" = "{digest}  -" ]'
        probe = f"cmp -s {autostop.DIR}/watchdog.py -{boot}{wanted}"
        return (await ctx.probe(probe, input=autostop.SOURCE.read_text())).ok

    async def apply(self, ctx: SetupContext) -> None:
        from tui.core.autostop import service as autostop

        await ctx.do(autostop.install_command(), input=autostop.SOURCE.read_text(), what="installing the watchdog")
        if ctx.settings.autostop_note:
            ctx.note(ctx.settings.autostop_note)
        if ctx.settings.autostop_config:
            await ctx.do(autostop.write_config_command(ctx.settings.autostop_config), what="arming autostop")
            said = (await ctx.do(autostop.BOOT_ON_COMMAND, what="starting it at every boot")).output
            if "boot=no-cron" in said:
                ctx.note("autostop will restart at the next attach after a reboot: cron is not installed")
            elif "boot=failed" in said:
                ctx.note("autostop will restart at the next attach after a reboot: " + said.strip())
            await ctx.do(autostop.start_any_command(), what="starting the watchdog")


def default_steps() -> list[Step]:
    """The guide's steps 2-3, in order."""
    return [
        WaitForSSH(),
        DetectSystem(),
        EnsureScreen(),
        InstallPythonEnv(),
        WriteJupyterConfig(),
        CreateWorkspace(),
        MountVolume(),
        InstallAutostop(),
    ]
