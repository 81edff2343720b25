"""One Jupyter start at a time on a VM: "is the session running?" and starting it happen under one lock there.

Two `cades-tui jupyter start NAME` at once (or the app and a command) both find no server and both start one unless
the check and the start are one step on the VM. The start command therefore takes `flock` on
`~/.cades-tui/jupyter.lock` (the VM's private state dir, as the setup lock `tui.core.guide.vmlock` does), looks
for the session, and starts it only when it is not there, stamping the start time in
`~/.cades-tui/jupyter-<session>.started`. The lock is held for the few milliseconds of that command, never by the
server (its file descriptor is closed for the multiplexer, which would otherwise inherit it).

The one who finds the session there is told how long ago it was started (`already_started`): a start moments ago is
the other's server still booting — followed to readiness like one's own, so both report the same server — while an
old one is a session that does not answer, refused as before. Without `flock` on the VM the check and the start
still run in one command (a much narrower race).
"""

from __future__ import annotations

import re
import shlex

from tui.core.remote.session import Multiplexer

STATE_DIR = "$HOME/.cades-tui"
NOTICE = "cades-tui: session running for "
LOCK_WAIT_S = 30  # another start holds the lock only while it runs its start command
BUSY = 75  # exit status when the lock stayed held (EX_TEMPFAIL)

_RUNNING = re.compile(re.escape(NOTICE) + r"(-?\d+) s")


def _stamp_name(session: str) -> str:
    return "jupyter-" + re.sub(r"[^A-Za-z0-9_.-]", "_", session) + ".started"


def running_test(kind: Multiplexer, session: str) -> str:
    """A shell test that succeeds when the live session `session` of `kind` exists."""
    if kind is Multiplexer.TMUX:
        return f"tmux has-session -t {shlex.quote('=' + session)} 2>/dev/null"
    program = r'$0 ~ /\(/ { n = $1; sub(/^[0-9]+\./, "", n); if (n == ENVIRON["N"] && tolower($0) !~ /dead/) f = 1 }'
    return f"screen -ls 2>/dev/null | N={shlex.quote(session)} awk {shlex.quote(program + ' END { exit !f }')}"


def locked(kind: Multiplexer, session: str, start: str) -> str:
    """The shell command that runs `start` (the multiplexer's start line) only when the session is not running,
    under the VM's Jupyter start lock; when it runs, it prints how long ago it was started (`already_started`)."""
    stamp = f'"{STATE_DIR}/"{shlex.quote(_stamp_name(session))}'
    return (
        f'(umask 077 && mkdir -p "{STATE_DIR}") && chmod 700 "{STATE_DIR}" || exit 1\n'
        "if command -v flock >/dev/null 2>&1; then\n"
        f'  exec 8>>"{STATE_DIR}/jupyter.lock"\n'
        f"  flock -w {LOCK_WAIT_S} 8 || {{ echo 'another start of Jupyter on this VM held its lock for "
        f"{LOCK_WAIT_S} s: nothing started' >&2; exit {BUSY}; }}\n"
        "fi\n"
        f"if {running_test(kind, session)}; then\n"
        f"  _t0=$(cat {stamp} 2>/dev/null); _now=$(date +%s)\n"
        f'  echo "{NOTICE}$((_now - ${{_t0:-0}})) s"\n'
        "  exit 0\n"
        "fi\n"
        f"date +%s > {stamp}\n"
        f"{{ {start}\n}} 8>&-"
    )


def already_started(stdout: str) -> int | None:
    """Seconds since the running session was started, as `locked` printed it; None when it started the session."""
    found = _RUNNING.search(stdout)
    return int(found.group(1)) if found else None
