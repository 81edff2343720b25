"""Arm, keep, read and disarm the autostop watchdog on an instance, over the pooled SSH connection.

On the VM, `~/.cades-tui/autostop/` (0700) holds the watchdog (`watchdog.py`), its `config.json`, `state.json`,
`pid`, `keep` (touched to reset the timer), its log `watchdog.log` and `actions.log` (what it did: warned, kept,
powered off, shelved), and for `shelve` the VM's `credential.json` (0600). It runs detached in a screen (or tmux)
session named `cades-autostop`. Armed, it also starts at every boot: `boot.sh` (the same start, its timer from the
boot) run by one `@reboot` line in the user's crontab (marked `# cades-tui autostop`; removed when disarmed). Where
cron is not installed it starts again when the app next attaches, and its status says so. Every command is recorded
in the instance's command log here; what the watchdog did is copied there when its state is read.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncssh

from tui.core.autostop import credential
from tui.core.autostop.policy import Policy, human
from tui.core.autostop.status import AutostopStatus
from tui.core.autostop.watchdog import CRON_MARK
from tui.core.cloud.base import Cloud
from tui.core.config import Settings
from tui.core.errors import ManagerError
from tui.core.events import AutostopState, Emit
from tui.core.hints import command
from tui.core.models import Instance
from tui.core.paths import JUPYTER_LOGFILE
from tui.core.remote.commands import CommandLog
from tui.core.remote.session import Multiplexer, RemoteSession

SESSION = "cades-autostop"
DIR = '"$HOME"/.cades-tui/autostop'
SOURCE = Path(__file__).with_name("watchdog.py")


class AutostopError(ManagerError):
    """The watchdog could not be armed, kept, read or removed: one line for the user."""


def install_command() -> str:
    """Write the watchdog (stdin) and its `boot.sh` into its private folder. Shell; no secret."""
    return (f"set -e; umask 077; D={DIR}; mkdir -p \"$D\"; chmod 700 \"$D\"; "
            'cat > "$D/watchdog.py.tmp"; mv -f "$D/watchdog.py.tmp" "$D/watchdog.py"; '
            f"printf '%s' {shlex.quote(boot_script())} > \"$D/boot.sh.tmp\"; mv -f \"$D/boot.sh.tmp\" \"$D/boot.sh\"")


def write_config_command(config_json: str) -> str:
    return (f"set -e; umask 077; D={DIR}; mkdir -p \"$D\"; chmod 700 \"$D\"; "
            f"printf '%s\\n' {shlex.quote(config_json)} > \"$D/config.json.tmp\"; "
            'mv -f "$D/config.json.tmp" "$D/config.json"')


RUNNING = (f'D={DIR}; pid=$(cat "$D/pid" 2>/dev/null || true); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null '
           '&& grep -q watchdog.py "/proc/$pid/cmdline" 2>/dev/null')


def start_command(kind: Multiplexer) -> str:
    """(Re)start the watchdog detached: one that runs is ended first, so the new config holds from its first look
    and the timer starts now; returns once the new one runs."""
    session = RemoteSession.__new__(RemoteSession)
    session.kind = kind
    line = session.start_command(SESSION, 'python3 "$HOME"/.cades-tui/autostop/watchdog.py', "~",
                                 "~/.cades-tui/autostop/session.log")
    wait = (f"i=0; until {RUNNING}; do i=$((i+1)); if [ $i -ge 100 ]; then echo 'the watchdog did not start: "
            "see ~/.cades-tui/autostop/session.log' >&2; exit 1; fi; sleep 0.1; done")
    end = ('kill "$pid"; j=0; while kill -0 "$pid" 2>/dev/null && [ $j -lt 50 ]; do j=$((j+1)); sleep 0.1; done; '
           'echo "restarting the watchdog (was pid $pid)"')
    return f'if {RUNNING}; then {end}; fi; rm -f "$D/pid"; {line} && {{ {wait}; }}'



def start_any_command() -> str:
    """As `start_command`, with screen where the VM has it, else tmux (for setup, which has no connection)."""
    return (f"if command -v screen >/dev/null 2>&1; then {start_command(Multiplexer.SCREEN)}; "
            f"else {start_command(Multiplexer.TMUX)}; fi")


def boot_script() -> str:
    """What the crontab's @reboot line runs: the watchdog started as the app starts it (`start_any_command`), when
    autostop is armed. cron's PATH is short (/usr/bin:/bin): an SSH login's system folders are added after it."""
    return ("#!/bin/sh\n"
            f"# cades-tui autostop: run at boot by the user's crontab (the @reboot line ending {CRON_MARK!r}).\n"
            "# Starts the watchdog again with this VM's config.json, its idle timer from now. Output: boot.log.\n"
            f"D={DIR}\n"
            '[ -f "$D/config.json" ] || exit 0\n'
            'umask 077; exec > "$D/boot.log" 2>&1\n'
            'PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"; export PATH\n'
            f"{start_any_command()}\n")


BOOT_ON_COMMAND = f"python3 {DIR}/watchdog.py boot on"  # prints boot=cron|no-cron|failed: WHY
AT_BOOT = ('c=$(command -v crontab 2>/dev/null || true); '  # a sandbox VM: only its own crontab (see the watchdog)
           'if [ -n "$CADES_SANDBOX_VM" ]; then case "$c" in "$CADES_SANDBOX_VM"/*) ;; *) c= ;; esac; fi; '
           'if [ -z "$c" ]; then echo at_boot=no-cron; '
           f'elif "$c" -l 2>/dev/null | grep -q {shlex.quote(" " + CRON_MARK + "$")}; then echo at_boot=cron; '
           'else echo at_boot=no-line; fi')
OFF_COMMAND = (f"D={DIR}; rm -f \"$D/config.json\" \"$D/credential.json\" \"$D/keep\"; "
               f"if {RUNNING}; then kill \"$pid\"; fi; rm -f \"$D/pid\"; "
               # (a watchdog.py of an older version has no `boot`: it would run its loop)
               'if grep -qs "def set_boot" "$D/watchdog.py"; then python3 "$D/watchdog.py" boot off; fi; '
               'echo autostop off')
KEEP_COMMAND = f'D={DIR}; [ -f "$D/config.json" ] && touch "$D/keep" && echo kept'
STATUS_COMMAND = (f'D={DIR}; if [ -f "$D/config.json" ]; then echo armed=1; else echo armed=0; fi; '
                  f'if {RUNNING}; then echo running=1; else echo running=0; fi; {AT_BOOT}; echo ---; '
                  'cat "$D/state.json" 2>/dev/null; echo; echo ---; '
                  'cat "$D/actions.log" 2>/dev/null; true')


ConnFor = Callable[[Instance], Awaitable[asyncssh.SSHClientConnection]]


class AutostopService:
    """The watchdog of each instance: `arm`, `keep`, `status`, `off` (each reports an `AutostopState`)."""

    def __init__(self, cloud: Cloud, connect: ConnFor, command_log: Callable[[Instance], CommandLog],
                 emit: Emit) -> None:
        self.cloud = cloud
        self.connect = connect
        self.command_log = command_log
        self.emit = emit

    async def _run(self, inst: Instance, cmd: str, input: str | None = None, shown: str = "",
                   connect: ConnFor | None = None) -> str:
        conn = await (connect or self.connect)(inst)
        started, t0 = datetime.now(UTC), time.monotonic()
        try:
            result = await asyncio.wait_for(conn.run(cmd, input=input, check=False), 60)
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            self.command_log(inst).record(shown or cmd, None, time.monotonic() - t0, started)
            raise AutostopError(f"{inst.name}: {exc or type(exc).__name__}") from None
        self.command_log(inst).record(shown or cmd, result.exit_status, time.monotonic() - t0, started)
        if result.exit_status != 0:
            said = str(result.stderr or result.stdout or "").strip().splitlines()
            raise AutostopError(f"{inst.name}: {said[-1] if said else f'exit {result.exit_status}'}")
        return str(result.stdout or "")

    async def arm(self, inst: Instance, policy: Policy) -> AutostopStatus:
        """Install the watchdog, write its config (and for shelve a credential for this VM only), start it."""
        conn = await self.connect(inst)
        kind = await RemoteSession.detect(conn)
        await self._run(inst, install_command(), input=SOURCE.read_text())
        if policy.action == "shelve":
            cred = await asyncio.to_thread(credential.create, self.cloud, inst.id)
            text = json.dumps({"id": cred.id, "secret": cred.secret, "auth_url": cred.auth_url,
                               "compute_url": cred.compute_url})
            log = self.command_log(inst)
            log.add_secret(cred.secret)
            await self._run(inst, f"set -e; umask 077; D={DIR}; cat > \"$D/credential.json.tmp\"; "
                                  'chmod 600 "$D/credential.json.tmp"; mv -f "$D/credential.json.tmp" '
                                  '"$D/credential.json"', input=text)
        else:
            await self._run(inst, f'rm -f {DIR}/credential.json')
            await asyncio.to_thread(credential.forget, self.cloud, inst.id)
        config = policy.config_json(inst.id, command("autostop", inst.name, "--keep"), JUPYTER_LOGFILE[2:])
        await self._run(inst, write_config_command(config))
        said = await self._run(inst, BOOT_ON_COMMAND)  # at every boot too (no crontab: the status says so)
        if "boot=failed" in said:
            self.command_log(inst).record(f"# autostop at boot: {said.strip()}", 1, 0.0, datetime.now(UTC))
        await self._run(inst, start_command(kind.kind))
        return await self.status(inst)

    async def restart(self, inst: Instance, connect: ConnFor | None = None) -> AutostopStatus:
        """Start the watchdog again with the config the VM has (after the VM was started again: a power-off ends
        it). Its timer starts from now. `connect`: another way to the connection (the refresh's: no new login)."""
        kind = await RemoteSession.detect(await (connect or self.connect)(inst))
        await self._run(inst, f'[ -f {DIR}/config.json ] && {{ {start_command(kind.kind)}; }}', connect=connect)
        return await self.status(inst, connect)

    async def keep(self, inst: Instance) -> AutostopStatus:
        try:
            await self._run(inst, KEEP_COMMAND)
        except AutostopError:
            raise AutostopError(f"{inst.name} has no autostop to keep — set one with "
                                f"`{command('autostop', inst.name, '--idle', '60m')}`") from None
        return await self.status(inst)

    async def off(self, inst: Instance) -> AutostopStatus:
        await self._run(inst, OFF_COMMAND)
        await asyncio.to_thread(credential.forget, self.cloud, inst.id)
        return await self.status(inst)

    async def status(self, inst: Instance, connect: ConnFor | None = None) -> AutostopStatus:
        """The watchdog's state as the VM has it; what it did since the last read goes into the command log."""
        out = await self._run(inst, STATUS_COMMAND, shown="# autostop: read the watchdog's state", connect=connect)
        head, _, rest = out.partition("---\n")
        state_text, _, actions = rest.partition("---\n")
        flags = dict(line.split("=", 1) for line in head.split() if "=" in line)
        status = AutostopStatus.parse(flags.get("armed") == "1", flags.get("running") == "1", state_text,
                                      flags.get("at_boot", ""))
        self._copy_actions(inst, actions)
        self.emit(AutostopState(inst.id, status))
        return status

    def _copy_actions(self, inst: Instance, actions: str) -> None:
        """New lines of the VM's actions.log into the command log here (a counter beside it remembers how many)."""
        log = self.command_log(inst)
        seen_file = log.path.with_suffix(".autostop-seen")
        try:
            seen = int(seen_file.read_text())
        except (OSError, ValueError):
            seen = 0
        lines = actions.splitlines()
        if len(lines) < seen:  # a new actions.log (the VM was re-armed after a reinstall)
            seen = 0
        for line in lines[seen:]:
            log.record(f"# autostop on the VM: {line}", 0, 0.0, datetime.now(UTC))
        if len(lines) != seen:
            seen_file.parent.mkdir(parents=True, exist_ok=True)
            seen_file.write_text(str(len(lines)))


def setup_config(settings: Settings, inst: Instance) -> tuple[str, str]:
    """(config.json for the watchdog, or "" when the profile's autostop is off; a note when setup cannot arm it)."""
    from tui.core.autostop.policy import PolicyError
    from tui.core.autostop.profile import from_settings

    try:
        policy = from_settings(settings)
    except PolicyError as exc:
        return "", f"autostop not armed: {exc}"
    if policy is None:
        return "", ""
    if policy.action == "shelve":
        return "", ("autostop not armed: shelve needs the VM's own credential — run "
                    f"`{command('autostop', inst.name, '--idle', human(policy.idle_s), '--action', 'shelve')}`")
    return policy.config_json(inst.id, command("autostop", inst.name, "--keep"), JUPYTER_LOGFILE[2:]), ""


def status_json(name: str, status: AutostopStatus) -> dict[str, Any]:
    return {"instance": name, **status.to_json()}
