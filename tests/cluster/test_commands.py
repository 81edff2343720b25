"""The remote command lines: quoted, TLS everywhere, private binds — and they run in a real shell."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from tui.core.cluster import commands as cmd

ENV = "~/envs/my env"


def sh(line: str, home: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["bash", "-c", line], input=stdin, capture_output=True, timeout=30,
                          env={**os.environ, "HOME": str(home)})


def test_scheduler_listens_privately_over_tls_only() -> None:
    line = cmd.scheduler_command(ENV, cmd.SchedulerArgs("10.0.0.5", 8786, 8787))
    words = shlex.split(line)
    assert words[0] == "$HOME/envs/my env/bin/dask"  # expanded by the remote shell
    assert words[1:10] == ["scheduler", "--protocol", "tls", "--host", "10.0.0.5", "--port", "8786",
                           "--dashboard-address", "127.0.0.1:8787"]
    assert "--tls-ca-file" in words and "--tls-cert" in words and "--tls-key" in words
    assert cmd.SchedulerArgs("10.0.0.5", 9000).address == "tls://10.0.0.5:9000"
    assert cmd.SchedulerArgs("fd00::5", 9000).address == "tls://[fd00::5]:9000"


def test_worker_command_quotes_its_arguments() -> None:
    line = cmd.worker_command(ENV, "tls://10.0.0.5:8786", host="10.0.0.6", name="head-w1; rm -rf /", nthreads=2,
                              memory_limit="3GiB")
    words = shlex.split(line)
    assert words[1:4] == ["worker", "tls://10.0.0.5:8786", "--host"]
    assert words[words.index("--name") + 1] == "head-w1; rm -rf /"
    assert words[words.index("--nthreads") + 1] == "2" and words[words.index("--memory-limit") + 1] == "3GiB"
    assert "--no-dashboard" in words and "--tls-key" in words


def test_write_file_is_private_and_atomic(tmp_path: Path) -> None:
    res = sh(cmd.write_file_command(cmd.MEMBER_KEY), tmp_path, b"secret\n")
    assert res.returncode == 0, res.stderr
    key = tmp_path / ".cades-tui/dask/member.key"
    assert key.read_bytes() == b"secret\n"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert oct(key.parent.stat().st_mode & 0o777) == "0o700"
    assert not (key.parent / "member.key.tmp").exists()
    res = sh(cmd.write_file_command(cmd.CLIENT_CONFIG), tmp_path, b"{}\n")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / ".config/dask/cades-tui.yaml").read_bytes() == b"{}\n"


def test_probe_reads_versions_or_says_there_is_no_python(tmp_path: Path) -> None:
    res = sh(cmd.probe_command(sys.prefix, ["distributed", "no-such-package"]), tmp_path)
    d = json.loads(res.stdout)
    assert d["python"] == ".".join(map(str, sys.version_info[:3]))
    assert d["home"] == str(tmp_path) and d["packages"]["no-such-package"] is None
    assert d["packages"]["distributed"]
    res = sh(cmd.probe_command("~/nothing"), tmp_path)
    assert json.loads(res.stdout) == {"python": None, "home": str(tmp_path)}


def test_port_check(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert sh(cmd.port_check_command(sys.prefix, "127.0.0.1", port), tmp_path).stdout.startswith(b"taken:")
    assert sh(cmd.port_check_command(sys.prefix, "127.0.0.1", port), tmp_path).stdout == b"free\n"


def test_client_config_names_the_scheduler_and_absolute_tls_files() -> None:
    text = cmd.client_config("/home/cades", "tls://10.0.0.5:8786")
    import yaml

    config = yaml.safe_load(text)
    assert config["scheduler-address"] == "tls://10.0.0.5:8786"
    tls = config["distributed"]["comm"]["tls"]
    assert tls == {"ca-file": "/home/cades/.cades-tui/dask/ca.pem",
                   "client": {"cert": "/home/cades/.cades-tui/dask/member.pem",
                              "key": "/home/cades/.cades-tui/dask/member.key"}}
    assert config["distributed"]["comm"]["require-encryption"] is True


def test_requirements_pin_the_heads_versions() -> None:
    reqs = cmd.requirements({"dask": "2026.8.0", "distributed": "2026.8.0", "numpy": None, "toolz": "1.0.0"},
                            ["scikit-learn"])
    assert reqs == ["dask[distributed]==2026.8.0", "distributed==2026.8.0", "toolz==1.0.0", "scikit-learn"]
    script = cmd.install_command(ENV, "3.11.7", reqs)
    assert "export SSL_CERT_FILE=" in script and "uv venv --python 3.11" in script
    assert "'dask[distributed]==2026.8.0'" in script


def test_retire_command_passes_names_as_json() -> None:
    words = shlex.split(cmd.retire_command(ENV, ["b", "a'x"]))
    assert json.loads(words[3]) == ["a'x", "b"]
    assert "retire_workers(names=names, close_workers=True)" in words[2]


def test_log_tail_strips_screen_noise(tmp_path: Path) -> None:
    log = tmp_path / ".cades-tui/dask/worker.log"
    log.parent.mkdir(parents=True)
    log.write_bytes(b"\x1b[32mstarted\x1b[0m\r\n\x0fready\r\n")
    assert sh(cmd.log_tail_command(cmd.WORKER_LOG), tmp_path).stdout == b"started\nready\n"
