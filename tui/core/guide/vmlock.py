"""One setup at a time on a VM: every setup command runs holding `flock` on `~/.cades-tui/setup.lock`.

The lock is taken by the command's own shell (file descriptor 9, inherited by everything it starts), so a command
left running by an interrupted setup — the app killed, the terminal closed, the connection cut — still holds it. The
next command of any setup run finds it held and says so, then waits for the orphan to finish (it then checks what
is left: steps are idempotent), or stops it cleanly (SIGTERM to the process groups that have the lock file open,
SIGKILL 10 s later) once `wait_s` has passed, and says which. A group number is never signalled on the owner file's
word alone: once its group has ended, the number may belong to another program (on a VM, or on the sandbox's
shared machine).

Only an orphan is stopped. A holder whose client is still connected — another terminal's setup of the same VM — is
told apart by its SSH session: the owner file records the holder's shell and that shell's parent, the sshd process
of its connection, which ends with the connection (the shell is then re-parented). A live holder is waited for, and
after `wait_s` the waiting command refuses (exit 75) with a line saying so, and stops nothing.

A cancelled setup stops its own command the same way as an orphan (`stop_command`): a closed SSH channel does not
end a remote command, and sshd refuses signal requests to forced-command sessions.

`owner` (next to the lock) names the holder: process group, run id, start time, shell pid, the shell's parent (an
owner file of an older version, without the last two, is an orphan's). Lines the lock prints start with `NOTICE` so
the executor can show them to the user (also for read-only checks) and keep them out of results.
Without `flock` on the VM, commands run unlocked.
"""

from __future__ import annotations

import shlex

from tui.core.remote.session import remote_path

STATE_DIR = "~/.cades-tui"
SCRIPT = f"{STATE_DIR}/setup-lock.sh"
NOTICE = "cades-tui: "
ORPHAN_WAIT_S = 600  # how long a re-run waits for a setup command left running before it stops it

# Sourced (`. FILE RUN WAIT`) by the shell of every setup command. POSIX sh.
_SCRIPT_TEXT = r"""# cades-tui: one setup at a time on this VM (sourced before each setup command)
_cl="$HOME/.cades-tui/setup.lock"
# the holder is live while its shell is still the child of the sshd session that started it: a client that is
# gone (app killed, terminal closed, connection cut) takes that sshd process with it, and the shell is re-parented
_clive() {
  case "$_cpid" in ''|*[!0-9]*) return 1 ;; esac
  case "$_cppid" in ''|*[!0-9]*|0|1) return 1 ;; esac
  [ "$(ps -o ppid= -p "$_cpid" 2>/dev/null | tr -d ' ')" = "$_cppid" ]
}
_cowner() { _cpg=; _crun=; _ct0=; _cpid=; _cppid=; read -r _cpg _crun _ct0 _cpid _cppid < "$_cl.owner" 2>/dev/null; }
# the process groups holding the lock now: those of the processes that have the lock file open (/proc), else the
# recorded group while its recorded shell still runs in it — never a number merely recorded: once its group has
# ended, that number may belong to another program
_cholders() {
  _cme=$(ps -o pgid= -p $$ 2>/dev/null | tr -d ' ')
  if [ -d /proc/self/fd ]; then
    _clr=$(readlink -f "$_cl" 2>/dev/null) || _clr=$_cl
    for _cfd in /proc/[0-9]*/fd/*; do
      [ "$(readlink "$_cfd" 2>/dev/null)" = "$_clr" ] || continue
      _cp=${_cfd#/proc/}; ps -o pgid= -p "${_cp%%/*}" 2>/dev/null | tr -d ' '
    done | sort -u | grep -vx "${_cme:-x}"
  elif [ "$(ps -o pgid= -p "$_cpid" 2>/dev/null | tr -d ' ')" = "$_cpg" ] && [ "$_cpg" != "$_cme" ]; then
    echo "$_cpg"
  fi
}
_csignal() {
  for _cg in $(_cholders); do case "$_cg" in ''|*[!0-9]*|0|1) ;; *) kill "-$1" -- "-$_cg" 2>/dev/null ;; esac; done
}
if [ "$1" = "--stop" ]; then  # cancel: stop what run $2 left holding the lock (nothing when another run holds it)
  _cowner
  [ "$_crun" = "$2" ] && _csignal TERM
  return 0 2>/dev/null || exit 0
fi
if command -v flock >/dev/null 2>&1; then
  exec 9>>"$_cl"
  if ! flock -n 9; then
    _cowner
    _cnow=$(date +%s)
    if _clive; then
      echo "cades-tui: another setup run (run ${_crun:-?}, its client still connected, for" \
        "$((_cnow - ${_ct0:-$_cnow})) s) holds the setup lock: waiting for it to finish (up to $2 s)"
    else
      echo "cades-tui: a setup command left running by an earlier run (process group ${_cpg:-?}," \
        "for $((_cnow - ${_ct0:-$_cnow})) s) holds the setup lock: waiting for it to finish (up to $2 s)"
    fi
    _cw=0; _cs=10; [ "$2" -lt 10 ] && _cs=$2
    while ! flock -w "$_cs" 9; do
      _cw=$((_cw + _cs))
      if [ "$_cw" -ge "$2" ]; then
        _cowner
        if _clive; then
          echo "cades-tui: another setup run (run ${_crun:-?}) still runs after $_cw s, its client connected:" \
            "not stopping it; nothing done — run the setup again once it has finished"
          exit 75
        fi
        echo "cades-tui: it still runs after $_cw s: stopping it (SIGTERM to process group" \
          "$(_cholders | tr '\n' ' ' | sed 's/ $//')): the processes that hold the lock"
        _csignal TERM
        if ! flock -w 10 9; then
          _csignal KILL
          flock -w 10 9 || { echo "cades-tui: could not stop it; nothing done"; exit 75; }
        fi
        echo "cades-tui: stopped it; carrying on (each step checks what is already done)"
        break
      fi
      echo "cades-tui: still waiting for it ($_cw s)"
    done
    [ "$_cw" -lt "$2" ] && echo "cades-tui: it finished after $_cw s: carrying on (what it did is checked, not redone)"
  fi
  _cpg=$(ps -o pgid= -p $$ 2>/dev/null | tr -d ' ')
  echo "${_cpg:-$$} $1 $(date +%s) $$ $PPID" > "$_cl.owner"
fi
"""


def install_command() -> str:
    """Write the lock script (stdin: `script_text()`) into the VM's private state dir."""
    d, f = remote_path(STATE_DIR), remote_path(SCRIPT)
    return f"(umask 077 && mkdir -p {d} && chmod 700 {d} && cat > {f}.tmp && mv -f {f}.tmp {f})"


def script_text() -> str:
    return _SCRIPT_TEXT


def prefix(run_id: str, wait_s: int) -> str:
    """What goes before each setup command: take the lock (or wait for / stop its orphan holder)."""
    return f". {remote_path(SCRIPT)} {shlex.quote(run_id)} {int(wait_s)}\n"


def stop_command(run_id: str) -> str:
    """Stop the command of run `run_id` that holds the lock now (nothing when another run holds it): the process
    groups that have the lock file open, never a group number the owner file merely recorded."""
    return f". {remote_path(SCRIPT)} --stop {shlex.quote(run_id)}"


def split_notices(lines: list[str]) -> tuple[list[str], list[str]]:
    """(the lock's notices, the command's own lines)."""
    notices = [x for x in lines if x.startswith(NOTICE)]
    return notices, [x for x in lines if not x.startswith(NOTICE)] if notices else lines
