"""The exact remote shell lines of a Dask cluster; pure (no I/O), every argument quoted with shlex.quote.

Layout on every member (HOME-relative; `~/` is expanded by the remote shell):

    ~/.cades-tui/dask/          0700, written with umask 077
        ca.pem                  the cluster CA's certificate
        ca.key                  the CA's key — on the head only, so a later app run can add workers
        member.pem, member.key  this member's certificate and key (0600)
        scheduler.log           the head's scheduler session log (screen, flushed at once)
        worker.log, work/       a worker's session log and its local directory (spill files)
    ~/.config/dask/cades-tui.yaml   on the head: `scheduler-address` + the TLS files, so a plain `Client()` in a
                                    notebook connects (a file of its own: the user's distributed.yaml is never
                                    touched; dask merges every YAML file of that directory)

Sessions are started with `tui.core.remote.session.RemoteSession` (screen with `logfile flush 0`, tmux where
screen is missing): this module only builds the command they run.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tui.core.remote.session import remote_path

DASK_DIR = "~/.cades-tui/dask"
CA_CERT = f"{DASK_DIR}/ca.pem"
CA_KEY = f"{DASK_DIR}/ca.key"
MEMBER_CERT = f"{DASK_DIR}/member.pem"
MEMBER_KEY = f"{DASK_DIR}/member.key"
SCHEDULER_LOG = f"{DASK_DIR}/scheduler.log"
WORKER_LOG = f"{DASK_DIR}/worker.log"
WORKER_DIR = f"{DASK_DIR}/work"
CLIENT_CONFIG = "~/.config/dask/cades-tui.yaml"

SCHEDULER_SESSION = "dask-scheduler"
WORKER_SESSION = "dask-worker"

DEFAULT_SCHEDULER_PORT = 8786
DEFAULT_DASHBOARD_PORT = 8787
WORKER_HTTP_ADDRESS = "127.0.0.1:0"  # a worker's own HTTP server (metrics, health): the VM's loopback, any port

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

# What must match between members: dask and distributed themselves, and what (de)serializes data between them.
PINNED_PACKAGES = ("dask", "distributed", "cloudpickle", "msgpack", "toolz", "tornado", "numpy", "pandas",
                   "pyarrow", "lz4")

q = shlex.quote


def abs_path(path: str, home: str) -> str:
    """`~/x` as an absolute path under `home` (for config files that dask reads without expanding `~`)."""
    if path == "~":
        return home
    if path.startswith("~/"):
        return home.rstrip("/") + "/" + path[2:]
    return path


def python_of(env: str) -> str:
    """The remote shell word for the environment's Python (`env` may start with `~/`)."""
    return remote_path(env.rstrip("/") + "/bin/python")


def dask_of(env: str) -> str:
    return remote_path(env.rstrip("/") + "/bin/dask")


def write_file_command(path: str, mode: int = 0o600) -> str:
    """Write stdin to `path` atomically, private: umask 077, the dask dir 0700, the file `mode`.

    The content travels on the SSH channel's stdin, never on a command line (other users could read that in ps).
    """
    dest = remote_path(path)
    tmp = remote_path(path + ".tmp")
    parent = f'"$(dirname {dest})"'
    return (f"umask 077 && mkdir -p {parent} && chmod 700 {remote_path(DASK_DIR)} {parent} && "
            f"cat > {tmp} && chmod {mode:o} {tmp} && mv -f {tmp} {dest}")


def read_ca_command() -> str:
    """Print the CA certificate, a separator line, then the CA key (head only); exit 3 when there is none."""
    return (f"test -f {remote_path(CA_CERT)} && test -f {remote_path(CA_KEY)} || exit 3; "
            f"cat {remote_path(CA_CERT)}; echo {SEPARATOR}; cat {remote_path(CA_KEY)}")


SEPARATOR = "-----CADES-TUI-SEPARATOR-----"


_PROBE = r"""
import json, os, sys, importlib.metadata as m
def v(n):
    try:
        return m.version(n)
    except m.PackageNotFoundError:
        return None
print(json.dumps({"python": "%d.%d.%d" % sys.version_info[:3], "executable": sys.executable,
                  "home": os.path.expanduser("~"), "packages": {n: v(n) for n in sys.argv[1:]}}))
"""


def probe_command(env: str, packages: Iterable[str] = PINNED_PACKAGES) -> str:
    """One JSON line: the environment's Python version, HOME and the versions of `packages` (null when missing);
    `{"python": null, "home": ...}` when the environment has no Python."""
    py = python_of(env)
    names = " ".join(q(p) for p in packages)
    return (f"if [ -x {py} ]; then {py} -c {q(_PROBE.strip())} {names}; "
            f"else printf '{{\"python\": null, \"home\": \"%s\"}}\\n' \"$HOME\"; fi")


_PORT_CHECK = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the scheduler binds: TIME_WAIT is not "taken"
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
except OSError as e:
    print("taken:", e.strerror or e)
else:
    print("free")
finally:
    s.close()
"""


def port_check_command(env: str, host: str, port: int) -> str:
    """Prints `free` or `taken: <reason>` for host:port on the remote machine (with the environment's Python)."""
    return f"{python_of(env)} -c {q(_PORT_CHECK.strip())} {q(host)} {port}"


def requirements(packages: Mapping[str, str | None], extra: Iterable[str] = ()) -> list[str]:
    """`name==version` for every package the head has (dask with its `distributed` extra), plus `extra`."""
    reqs = []
    for name, version in packages.items():
        if version is None:
            continue
        reqs.append(f"dask[distributed]=={version}" if name == "dask" else f"{name}=={version}")
    return reqs + [e for e in extra if e]


def install_command(env: str, python_version: str, reqs: Iterable[str]) -> str:
    """Create the environment (uv venv for the head's Python version, else python3 -m venv) when missing, then
    install `reqs` with uv (installed into the env with pip when the host has none) — the way setup does, with
    SSL_CERT_FILE set (sshd's clean environment otherwise makes uv fail TLS with UnknownIssuer)."""
    prefix = remote_path(env.rstrip("/"))
    py = python_of(env)
    pkgs = " ".join(q(r) for r in reqs)
    minor = ".".join(python_version.split(".")[:2])
    return (
        "set -e\n"
        f"if [ -f {CA_BUNDLE} ]; then export SSL_CERT_FILE={CA_BUNDLE}; fi\n"
        f"if [ ! -x {py} ]; then\n"
        f"  if command -v uv >/dev/null 2>&1; then uv venv --python {q(minor)} {prefix}\n"
        f"  else python3 -m venv {prefix}; fi\n"
        "fi\n"
        "if command -v uv >/dev/null 2>&1; then UV=uv\n"
        f"elif [ -x {prefix}/bin/uv ]; then UV={prefix}/bin/uv\n"
        f"else {py} -m pip --version >/dev/null 2>&1 || {py} -m ensurepip\n"
        f"  {py} -m pip install -q --disable-pip-version-check uv; UV={prefix}/bin/uv\n"
        "fi\n"
        f'"$UV" pip install --python {py} {pkgs}\n'
    )


@dataclass(frozen=True, slots=True)
class SchedulerArgs:
    host: str  # the head's private address: the scheduler listens there only
    port: int = DEFAULT_SCHEDULER_PORT
    dashboard_port: int = DEFAULT_DASHBOARD_PORT  # always on 127.0.0.1: reach it through an SSH tunnel

    @property
    def address(self) -> str:
        return f"tls://{_host_port(self.host, self.port)}"


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _tls_args() -> str:
    return (f"--tls-ca-file {remote_path(CA_CERT)} --tls-cert {remote_path(MEMBER_CERT)} "
            f"--tls-key {remote_path(MEMBER_KEY)}")


# The scheduler's own `/json/identity.json` answers HTTP 500 while the cluster computes: a worker's heartbeat
# metrics (`digests_total_since_heartbeat`) are keyed by tuples, which JSON cannot encode (distributed 2026.8.0).
# This preload (dask runs a --preload given as source text) serves the same identity at IDENTITY_ROUTE with every
# key made a string; the app reads it there, and /json/identity.json only from a scheduler started without it.
IDENTITY_ROUTE = "/cades-tui/identity.json"
_IDENTITY_PRELOAD = f"""
import json
from distributed.http.utils import RequestHandler


def _plain(value):
    if isinstance(value, dict):
        return {{k if isinstance(k, str) else repr(k): _plain(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    return value


class CadesIdentity(RequestHandler):
    def get(self):
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps(_plain(self.server.identity()), default=str))


def dask_setup(scheduler):
    route = ({IDENTITY_ROUTE!r}, CadesIdentity, {{"dask_server": scheduler}})
    scheduler.http_application.add_handlers(r".*$", [route])
"""


def scheduler_command(env: str, args: SchedulerArgs) -> str:
    """The scheduler's command line (run by bash inside the session): TLS only, private address, local dashboard,
    and the identity route every status reads (see IDENTITY_ROUTE)."""
    return (f"{dask_of(env)} scheduler --protocol tls --host {q(args.host)} --port {args.port} "
            f"--dashboard-address {q(_host_port('127.0.0.1', args.dashboard_port))} {_tls_args()} "
            f"--preload {q(_IDENTITY_PRELOAD)}")


def worker_command(env: str, scheduler_address: str, *, host: str, name: str, nthreads: int,
                   memory_limit: str = "auto") -> str:
    """A worker's command line: connects to `scheduler_address` (tls://…) and retries until it is up; the nanny
    and the worker listen on its private address only; no worker dashboard; spill files in its own directory.

    `--no-dashboard` only leaves out the dashboard's pages: the worker still serves HTTP (`/metrics`, `/health`,
    `/sitemap.json`, without TLS or auth) on `--dashboard-address`, whose default `:0` means every interface
    (distributed 2026.8 `Node.start_http_server`). `127.0.0.1:0` keeps it on the VM's loopback."""
    return (f"{dask_of(env)} worker {q(scheduler_address)} --host {q(host)} --nthreads {int(nthreads)} "
            f"--memory-limit {q(memory_limit)} --name {q(name)} --no-dashboard "
            f"--dashboard-address {q(WORKER_HTTP_ADDRESS)} "
            f"--local-directory {remote_path(WORKER_DIR)} {_tls_args()}")


def client_config(home: str, scheduler_address: str) -> str:
    """The head's dask config for notebooks: a plain `Client()` connects to the cluster over mutual TLS."""
    config = {
        "scheduler-address": scheduler_address,
        "distributed": {"comm": {"require-encryption": True, "tls": {
            "ca-file": abs_path(CA_CERT, home),
            "client": {"cert": abs_path(MEMBER_CERT, home), "key": abs_path(MEMBER_KEY, home)},
        }}},
    }
    # JSON is YAML: no YAML writer needed, and paths with odd characters stay exact.
    return "# Written by cades-tui for its Dask cluster; removed when the cluster is stopped.\n" + json.dumps(
        config, indent=2) + "\n"


def remove_client_config_command() -> str:
    return f"rm -f {remote_path(CLIENT_CONFIG)}"


_RETIRE = r"""
import json, sys
from distributed import Client
names = json.loads(sys.argv[1])
with Client(timeout=float(sys.argv[2])) as client:
    info = client.retire_workers(names=names, close_workers=True)
    print(json.dumps(sorted(str(v.get("name")) for v in info.values())))
"""


def retire_command(env: str, names: Iterable[str], timeout: float = 30.0) -> str:
    """Run on the head: ask the scheduler (over TLS, with the head's client config) to retire the named workers —
    it first copies their data to the remaining workers — and close them. Prints the retired names as JSON."""
    return f"{python_of(env)} -c {q(_RETIRE.strip())} {q(json.dumps(sorted(names)))} {timeout:g}"


def log_tail_command(path: str, lines: int = 30) -> str:
    """The log's last lines, cleaned of screen's ANSI codes, \\x0e/\\x0f and CRs."""
    return (f"tail -n {int(lines)} {remote_path(path)} 2>/dev/null | "
            r"sed -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/[\x0e\x0f\r]//g'")
