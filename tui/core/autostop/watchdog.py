"""The autostop watchdog that runs ON THE VM (python3, standard library only: any image has it).

Uploaded by the app to ~/.cades-tui/autostop/watchdog.py and run detached (screen or tmux), so it works with the
laptop closed. Every `every_s` seconds it asks: is anything using this VM? A Jupyter kernel busy, or a kernel or
terminal active within the period (Jupyter's REST API on 127.0.0.1, token from the server's runtime file — never
logged); a Dask task on a cluster head (the scheduler's dashboard on 127.0.0.1); an interactive SSH session (a
process whose stdin is its session's terminal, `SSH_TTY`: the app's own connections never ask for a terminal); CPU
above `cpu_percent` (/proc/stat). When nothing has for `idle_s`, it warns (`warn_s` before: a line in Jupyter's
log and in its state file, which the app reads), then acts: `stop` powers the VM off from inside, `shelve` asks
Nova with the VM's own application credential (restricted to this server's action call). A newer `keep` file
resets the timer. Config, state and logs live in its 0700 directory; what it did is appended to `actions.log`.

`watchdog.py boot on|off` adds (or removes) one `@reboot` line in the user's crontab, marked `# cades-tui autostop`,
that runs `boot.sh` (written by the app: it starts the watchdog again after a reboot, its timer from the boot); the
rest of the crontab is kept byte-for-byte. It prints `boot=cron` (added), `boot=off` (removed), `boot=no-cron` (no
`crontab` here) or `boot=failed: WHY`. The watchdog removes the line itself when it finds its config gone, and
disarms itself on a clone of the armed VM (its config names another server than cloud-init's instance id).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

HOME = os.path.expanduser("~")
DIR = os.path.join(HOME, ".cades-tui", "autostop")
SYSTEM_DIRS = ("/sbin", "/usr/sbin", "/bin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")
SANDBOX_ENV = "CADES_SANDBOX_VM"  # a sandbox VM (a process on someone's laptop): never sudo, never systemctl
CRON_MARK = "# cades-tui autostop"  # ends our @reboot line in the user's crontab
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def path(name: str) -> str:
    return os.path.join(DIR, name)


def stamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def log(line: str, actions: bool = False) -> None:
    text = f"{stamp(time.time())} {line}\n"
    for name in ("watchdog.log", *(("actions.log",) if actions else ())):
        fd = os.open(path(name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(text)


def write_json(name: str, data: dict[str, Any]) -> None:
    tmp = path(name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path(name))


def read_json(name: str) -> dict[str, Any] | None:
    try:
        with open(path(name)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def parse_time(text: Any) -> float:
    """Jupyter's ISO times ('2026-12-06T10:00:00.123456Z') as epoch seconds; 0 when unreadable."""
    if not isinstance(text, str) or len(text) < 19:
        return 0.0
    try:
        import calendar

        return float(calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return 0.0


def request(url: str, body: Any = None, headers: dict[str, str] | None = None) -> urllib.request.Request:
    """An http(s) request only (never file: or another scheme)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url[:40]}")
    data = None if body is None else json.dumps(body).encode()
    hdrs = {**({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})}
    return urllib.request.Request(url, data, hdrs)  # noqa: S310 (http(s) checked above)


def get_json(url: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(request(url, None, headers), timeout=timeout) as resp:  # noqa: S310
        return json.loads(resp.read().decode())


# -- what keeps the VM busy: each returns (last active epoch, why) or None --------------------------------------


def jupyter_activity(now: float) -> tuple[float, str] | None:
    """The latest kernel/terminal activity of every live Jupyter server of this user (now when a kernel is busy)."""
    runtime = os.environ.get("JUPYTER_RUNTIME_DIR") or os.path.join(HOME, ".local", "share", "jupyter", "runtime")
    best: tuple[float, str] | None = None
    for info_file in glob.glob(os.path.join(runtime, "jpserver-*.json")):
        try:
            with open(info_file) as f:
                info = json.load(f)
            os.kill(int(info["pid"]), 0)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        base = f"http://127.0.0.1:{int(info['port'])}{info.get('base_url') or '/'}"
        auth = {"Authorization": "token " + str(info.get("token") or "")}
        for kind in ("kernels", "terminals"):
            try:
                items = get_json(base + "api/" + kind, auth)
            except (OSError, ValueError):
                continue
            for item in items if isinstance(items, list) else []:
                if kind == "kernels" and item.get("execution_state") == "busy":
                    return now, f"a Jupyter kernel is busy ({item.get('name', 'kernel')})"
                last = parse_time(item.get("last_activity"))
                if last and (best is None or last > best[0]):
                    best = (last, f"Jupyter {kind[:-1]} activity")
    return best


def dask_activity(now: float) -> tuple[float, str] | None:
    """Tasks on the Dask cluster this VM heads (its manifest names the dashboard port on 127.0.0.1)."""
    try:
        with open(os.path.join(HOME, ".cades-tui", "dask", "cluster.json")) as f:
            port = int(json.load(f)["dashboard_port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for route in ("/cades-tui/identity.json", "/json/identity.json"):
        try:
            data = get_json(f"http://127.0.0.1:{port}{route}")
        except (OSError, ValueError):
            continue
        workers = data.get("workers") if isinstance(data, dict) else None
        for info in (workers or {}).values():
            counts = ((info or {}).get("metrics") or {}).get("task_counts") or {}
            busy = sum(int(v or 0) for k, v in counts.items() if k in (
                "executing", "ready", "constrained", "long-running", "waiting", "fetch", "flight"))
            if busy:
                return now, f"{busy} Dask task(s) running"
        return None
    return None


def ssh_sessions(now: float) -> tuple[float, str] | None:
    """An interactive SSH login of this user: a process whose stdin is its session's terminal (SSH_TTY). The app's
    own connections (commands, polling, tunnels) never ask for a terminal; a person's `ssh` does."""
    if sys.platform == "win32":  # the watchdog runs on the VM (Linux); this keeps the laptop-side type check true
        return None
    me = os.getuid()
    for proc in glob.glob("/proc/[0-9]*"):
        try:
            if os.stat(proc).st_uid != me:
                continue
            with open(proc + "/environ", "rb") as f:
                env = dict(p.split(b"=", 1) for p in f.read().split(b"\0") if b"=" in p)
            tty = env.get(b"SSH_TTY", b"").decode()
            if not tty or env.get(b"HOME", b"").decode() != HOME:
                continue
            if os.readlink(proc + "/fd/0") == tty:
                return now, f"an SSH session on {tty}"
        except (OSError, ValueError):
            continue
    return None


class CPU:
    """Busy share of all CPUs between two reads of /proc/stat."""

    def __init__(self) -> None:
        self.last = self.read()

    @staticmethod
    def read() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return sum(values), idle

    def percent(self) -> float:
        total, idle = self.read()
        dt, di = total - self.last[0], idle - self.last[1]
        self.last = (total, idle)
        return 100.0 * (dt - di) / dt if dt > 0 else 0.0


def busy(cfg: dict[str, Any], cpu: CPU, now: float) -> tuple[float, str] | None:
    found = [a for a in (jupyter_activity(now), dask_activity(now), ssh_sessions(now)) if a is not None]
    used = cpu.percent()
    if used > float(cfg.get("cpu_percent", 5)):
        found.append((now, f"CPU {used:.0f}% (threshold {float(cfg.get('cpu_percent', 5)):g}%)"))
    return max(found) if found else None


# -- warning and acting -------------------------------------------------------------------------------------------


def warn(cfg: dict[str, Any], acts_at: float) -> str:
    minutes = max(0.0, (acts_at - time.time()) / 60)
    line = (f"[W {stamp(time.time())} cades-tui autostop] this VM will {cfg['action']} at {stamp(acts_at)} "
            f"(in {minutes:.1f} min): idle. To keep it: {cfg.get('keep_hint', 'cades-tui autostop NAME --keep')}")
    jupyter_log = os.path.join(HOME, cfg.get("jupyter_log", ".cades-tui/jupyter.log"))
    try:
        if os.path.exists(jupyter_log):
            with open(jupyter_log, "a") as f:
                f.write(line + "\n")
    except OSError:
        pass
    log("warned: " + line, actions=True)
    return line


def run(argv: list[str]) -> tuple[int, str]:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return 127, str(exc)
    return p.returncode, (p.stderr or p.stdout).strip()[-300:]


def power_off() -> str:
    """Power off from inside: `poweroff` (root, or a guest's own), else `sudo -n poweroff`, `systemctl poweroff`."""
    found = shutil.which("poweroff") or ""
    chain = [["poweroff"]] if found else []
    own = found and os.path.dirname(found) not in SYSTEM_DIRS  # a guest-provided poweroff: only that one
    if not own and not os.environ.get(SANDBOX_ENV):
        chain += [["sudo", "-n", "poweroff"], ["systemctl", "poweroff"]]
    said = []
    for argv in chain:
        code, out = run(argv)
        if code == 0:
            return f"powered off ({' '.join(argv)})"
        said.append(f"{' '.join(argv)}: exit {code} {out}")
    return "power-off failed: " + "; ".join(said or ["no poweroff command"])


def shelve(cfg: dict[str, Any]) -> tuple[bool, str]:
    """Nova's shelve with this VM's application credential (access rules: this server's action call only)."""
    cred = read_json("credential.json")
    if cred is None:
        return False, "no credential.json"
    body = {"auth": {"identity": {"methods": ["application_credential"], "application_credential": {
        "id": cred["id"], "secret": cred["secret"]}}}}
    try:
        req = request(cred["auth_url"].rstrip("/") + "/v3/auth/tokens", body)
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            token = resp.headers["X-Subject-Token"]
        action = cred["compute_url"].rstrip("/") + f"/servers/{cfg['server_id']}/action"
        req = request(action, {"shelve": None}, {"X-Auth-Token": token})
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return True, f"shelve requested (HTTP {resp.status})"
    except urllib.error.HTTPError as exc:
        return False, f"shelve refused (HTTP {exc.code})"
    except (OSError, ValueError, KeyError) as exc:
        return False, f"shelve failed ({type(exc).__name__})"


def act(cfg: dict[str, Any]) -> str:
    if cfg.get("action") == "shelve":
        ok, said = shelve(cfg)
        log(said, actions=True)
        if ok:
            return said
        log("shelving failed: powering off instead", actions=True)
    said = power_off()
    log(said, actions=True)
    return said


# -- at boot: the user's crontab --------------------------------------------------------------------------------


def boot_line(home: str = HOME) -> str:
    """Our crontab line: at boot, `boot.sh` (it starts the watchdog if autostop is armed). cron gives `%` a meaning
    of its own in a command: escaped."""
    script = shlex.quote(os.path.join(home, ".cades-tui", "autostop", "boot.sh"))
    return f"@reboot /bin/sh {script} {CRON_MARK}".replace("%", "\\%")


def is_ours(line: str) -> bool:
    return line.rstrip("\r\n").endswith(" " + CRON_MARK)


def crontab_with(text: str, line: str | None) -> str:
    """The crontab `text` with our line set to `line` (in place of the first of ours, else appended) or, for None,
    removed. Every other line is kept byte-for-byte (a last line without its newline gets one: crontab needs it)."""
    lines = [part + "\n" for part in text.split("\n")]
    lines[-1] = lines[-1][:-1]  # what follows the last newline ("" when the text ends with one)
    out: list[str] = []
    placed = False
    for old in filter(None, lines):
        if not is_ours(old):
            out.append(old)
        elif line is not None and not placed:
            out.append(line + "\n")
            placed = True
    if line is not None and not placed:
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out.append(line + "\n")
    return "".join(out)


def crontab_program() -> str | None:
    """This user's `crontab`, or None where cron is not installed. On a sandbox VM only its own (the shim in the
    VM's folder): never the crontab of the laptop it runs on."""
    found = shutil.which("crontab")
    vm = os.environ.get(SANDBOX_ENV)
    if found and vm and not os.path.realpath(found).startswith(os.path.realpath(vm) + os.sep):
        return None
    return found


def crontab_run(prog: str, args: list[str], text: str | None = None) -> tuple[int, str, str]:
    try:
        p = subprocess.run([prog, *args], input=text, capture_output=True, timeout=30, encoding="utf-8",
                           errors="surrogateescape")  # any bytes of the user's crontab come back as they were
    except (OSError, subprocess.SubprocessError) as exc:
        return 127, "", str(exc)
    return p.returncode, p.stdout, p.stderr.strip()[-300:]


def set_boot(on: bool) -> str:
    """Add (on) or remove (off) our @reboot line: `cron` (added) or `off` (removed), `no-cron`, or `failed: WHY`."""
    prog = crontab_program()
    if prog is None:
        return "no-cron"
    os.makedirs(DIR, mode=0o700, exist_ok=True)
    with open(path("crontab.lock"), "w") as lock:  # an app and a CLI arming at once: one edit after the other
        if sys.platform != "win32":  # the watchdog runs on the VM (Linux); this keeps the laptop's type check true
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        code, current, err = crontab_run(prog, ["-l"])
        if code != 0 and "no crontab" not in err.lower():
            return f"failed: crontab -l: {err or f'exit {code}'}"
        current = current if code == 0 else ""
        wanted = crontab_with(current, boot_line() if on else None)
        if wanted != current:
            code, _, err = crontab_run(prog, ["-"], wanted) if wanted else crontab_run(prog, ["-r"])
            if code != 0:
                return f"failed: crontab: {err or f'exit {code}'}"
    return "cron" if on else "off"


# -- a clone of the armed VM (booted from its frozen image) -----------------------------------------------------


def this_server() -> str:
    """This VM's Nova id where it is known, else "": cloud-init's instance id (OpenStack's datasources set it to the
    server's UUID; others, e.g. EC2-style ids, are not compared), on a sandbox VM its folder's name (the server id)."""
    vm = os.environ.get(SANDBOX_ENV)
    if vm:
        text = os.path.basename(vm.rstrip("/"))
    else:
        try:
            with open("/var/lib/cloud/data/instance-id") as f:
                text = f.read()
        except OSError:
            return ""
    text = text.strip().lower()
    return text if UUID.fullmatch(text) else ""


def disarm_if_foreign(cfg: dict[str, Any]) -> bool:
    """A config armed for another server (this VM is a clone of it: its image carried the folder and the crontab):
    never act for it — above all never shelve that server with its credential. The config, the credential and the
    @reboot line are removed here (the other VM keeps its own); arm this VM anew to have autostop on it."""
    here, armed = this_server(), str(cfg.get("server_id") or "").lower()
    if not here or not UUID.fullmatch(armed) or here == armed:
        return False
    for name in ("config.json", "credential.json", "keep"):
        with contextlib.suppress(OSError):
            os.unlink(path(name))
    log(f"armed for server {armed}, but this VM is {here} (a clone of it?): autostop disarmed here "
        f"(at boot: {set_boot(False)})", actions=True)
    return True


# -- the loop -----------------------------------------------------------------------------------------------------


def step(cfg: dict[str, Any], state: dict[str, Any], cpu: CPU, now: float) -> bool:
    """One look; True when it acted (then the watchdog ends: the VM goes down)."""
    active = busy(cfg, cpu, now)
    idle_since = float(state.get("idle_since") or now)
    if active is not None and active[0] > idle_since:
        idle_since = min(now, active[0])
    try:
        keep = os.stat(path("keep")).st_mtime
        if keep > idle_since:
            idle_since = min(now, keep)
            log("kept: the timer starts again", actions=True)
    except OSError:
        pass
    idle_s, warn_s = float(cfg["idle_s"]), float(cfg.get("warn_s", 0))
    acts_at = idle_since + idle_s
    if acts_at != state.get("acts_at"):  # activity, a keep or a new period: any warning given is void
        state.update(warned_at=None, warning=None)
    recent = active is not None and now - active[0] <= max(2 * float(cfg.get("every_s", 60)), 5.0)
    state.update(idle_since=idle_since, acts_at=acts_at, updated=now, busy=active[1] if active and recent else "",
                 action=cfg["action"], idle_s=idle_s)
    if state.get("warned_at") is None and now >= acts_at - warn_s:
        state.update(warned_at=now, warning=warn(cfg, acts_at))
    elif state.get("warned_at") is not None and now >= acts_at:
        state.update(acted={"at": now, "action": cfg["action"], "result": "acting"})
        write_json("state.json", state)
        log(f"idle for {idle_s:g} s: {cfg['action']}", actions=True)
        state["acted"]["result"] = act(cfg)
        write_json("state.json", state)
        return True
    write_json("state.json", state)
    return False


def main() -> int:
    os.makedirs(DIR, mode=0o700, exist_ok=True)
    os.chmod(DIR, 0o700)
    cpu = CPU()
    state: dict[str, Any] = {"pid": os.getpid(), "started": time.time()}
    with open(path("pid.tmp"), "w") as f:
        f.write(str(os.getpid()))
    os.replace(path("pid.tmp"), path("pid"))
    write_json("state.json", state)  # a fresh start: what an earlier run did is in actions.log, not here
    log(f"started (pid {os.getpid()})")
    while True:
        cfg = read_json("config.json")
        if cfg is None:
            log(f"no config.json: autostop is off, ending (at boot: {set_boot(False)})")
            return 0
        if disarm_if_foreign(cfg) or step(cfg, state, cpu, time.time()):
            return 0
        time.sleep(max(0.1, float(cfg.get("every_s", 60))))


def boot_main(arg: str) -> int:
    if arg not in ("on", "off"):
        print("usage: watchdog.py [boot on|off]", file=sys.stderr)
        return 2
    print("boot=" + set_boot(arg == "on"))
    return 0


if __name__ == "__main__":
    sys.exit(boot_main(sys.argv[2] if len(sys.argv) > 2 else "") if sys.argv[1:2] == ["boot"] else main())
