"""A guest's cron: `crontab` on a sandbox VM's PATH is a shim keeping the VM's own crontab in its folder
(`ROOT/spool/crontab`, never the crontab of the machine the sandbox runs on), and when the sandbox boots a VM
(build, start, reboot, unshelve) it runs the crontab's `@reboot` lines as cron does: `/bin/sh -c LINE` in the VM's
HOME with its environment (PATH: the VM's shims first), detached, output to `ROOT/etc/cron.log`. Their processes carry
the VM's marker, so they end when the VM stops, as its other processes do."""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

from tui.sandbox import guestbin, procs
from tui.sandbox.sshhost import MARKER_ENV, SSHHost

CRON_PATH = "/usr/local/bin:/usr/bin:/bin"  # an SSH login's PATH here (sshd's default): the VM's shims go first
_ENV_LINE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*")

SHIM = """#!/bin/sh
# The sandbox's crontab: this VM's own, in its folder ($CADES_SANDBOX_VM/spool/crontab), never this machine's.
# crontab -l | crontab - (stdin) | crontab FILE | crontab -r. The sandbox runs its @reboot lines at each boot.
[ -n "$CADES_SANDBOX_VM" ] || { echo "crontab: not a sandbox VM" >&2; exit 1; }
umask 077
S="$CADES_SANDBOX_VM/spool"; F="$S/crontab"; me=$(id -un 2>/dev/null || echo "$LOGNAME")
usage() { echo "usage: crontab { -l | -r | - | FILE }" >&2; exit 1; }
install() {  # stdin: the new crontab. As cron's crontab: refused without a newline at its end
  mkdir -p "$S" && cat > "$F.new" || exit 1
  if [ -s "$F.new" ] && [ "$(tail -c 1 "$F.new" | wc -l)" -eq 0 ]; then
    rm -f "$F.new"; echo "new crontab file is missing newline before EOF, can't install." >&2; exit 1
  fi
  mv -f "$F.new" "$F"
}
[ $# -eq 1 ] || usage
case "$1" in
  -l) [ -f "$F" ] || { echo "no crontab for $me" >&2; exit 1; }; cat "$F" ;;
  -r) [ -f "$F" ] || { echo "no crontab for $me" >&2; exit 1; }; rm -f "$F" ;;
  -) install ;;
  -*) usage ;;
  *) [ -r "$1" ] || { echo "crontab: $1: No such file or directory" >&2; exit 1; }; install < "$1" ;;
esac
"""


def crontab_file(root: Path) -> Path:
    return root / "spool" / "crontab"


def install_shim(root: Path) -> None:
    """`ROOT/bin/crontab`: the VM's sessions find it first on their PATH."""
    guestbin.install(root, "crontab", SHIM)


def at_reboot(text: str) -> tuple[dict[str, str], list[tuple[str, str | None]]]:
    """The crontab's variable settings and its `@reboot` jobs, each (command, its stdin): as cron reads a line, the
    command ends at the first `%` not escaped `\\%`, and what follows is its stdin (each further `%` a newline)."""
    env: dict[str, str] = {}
    jobs: list[tuple[str, str | None]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        setting = _ENV_LINE.fullmatch(line)
        if setting and not line.lstrip().startswith("@"):
            value = setting.group(2)
            env[setting.group(1)] = value[1:-1] if len(value) > 1 and value[0] == value[-1] in "'\"" else value
            continue
        words = line.split(None, 1)
        if words[0] == "@reboot" and len(words) == 2:
            parts = re.split(r"(?<!\\)%", words[1].strip(), maxsplit=1)
            command = parts[0].replace("\\%", "%")
            jobs.append((command, parts[1].replace("%", "\n") + "\n" if len(parts) > 1 else None))
    return env, jobs


def booting(host: SSHHost) -> bool:
    """Whether starting `host` now is a boot: it is not serving and no process of the VM lives (a sandbox that
    stopped without powering its VMs off left them running: starting their sshd again is no boot)."""
    if host.running or not crontab_file(host.root).is_file():
        return False
    return not procs.marked_pids(f"{MARKER_ENV}={host.root}")


def run_boot_jobs(host: SSHHost) -> list[int]:
    """Run the VM's `@reboot` jobs as cron does at boot. Returns their pids (each reaped by a thread of its own)."""
    try:
        text = crontab_file(host.root).read_text()
    except OSError:
        return []
    settings, jobs = at_reboot(text)
    vm = host.session_env()  # HOME, the VM's screen/tmux folders, its marker (never overridden: see SSHHost.stop)
    env = {"PATH": f"{host.root / 'bin'}:{CRON_PATH}", "SHELL": "/bin/sh", "LOGNAME": host.user, "USER": host.user,
           **vm, **settings, MARKER_ENV: vm[MARKER_ENV]}
    pids = []
    for command, stdin in jobs:
        with open(host.etc / "cron.log", "ab") as out:
            proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=host.home, env=env, start_new_session=True,
                                    stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT)
        data = stdin.encode() if stdin is not None else None
        threading.Thread(target=proc.communicate, args=(data,), name="cades-vm-cron", daemon=True).start()
        pids.append(proc.pid)
    return pids
