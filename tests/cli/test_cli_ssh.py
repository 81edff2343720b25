"""`cades-tui ssh` and `setup --dry-run` against a sandbox instance: real OpenSSH client, real sshd, pinned keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tui.__main__ import main


@pytest.fixture
def env(sandbox: object, tmp_path: Path) -> dict[str, str]:
    import os

    return {**os.environ, "OS_CLIENT_CONFIG_FILE": str(sandbox.clouds_yaml), "OS_CLOUD": "sandbox",  # type: ignore[attr-defined]
            "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_STATE_HOME": str(tmp_path / "state"),
            "XDG_CONFIG_HOME": str(tmp_path / "config")}


def cades(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_ssh_runs_commands_with_pinned_host_key(env: dict[str, str], tmp_path: Path) -> None:
    launched = cades(env, "launch", "ssh-vm", "--wait", "--json")
    assert launched.returncode == 0, launched.stderr
    inst = json.loads(launched.stdout)
    try:
        r = cades(env, "ssh", "ssh-vm", "--", "echo", "hello-from-vm;", "exit", "3")
        assert r.returncode == 3, r.stderr
        assert "hello-from-vm" in r.stdout
        known = (tmp_path / "data" / "cades-tui" / "known_hosts").read_text()
        assert f"[{inst['ip']}]:{inst['ssh_port']}" in known  # pinned from the console log, no question asked
        # the remote HOME is the instance's disk, not the user's real home
        r = cades(env, "ssh", "ssh-vm", "--", "pwd")
        assert r.returncode == 0 and "/instances/" in r.stdout
        log = cades(env, "commands", "ssh-vm")
        assert log.returncode == 0 and "exit=" in log.stdout and "pwd" in log.stdout  # the TOFU/pin check ran
        out = tmp_path / "export.log"
        assert cades(env, "commands", "ssh-vm", "-o", str(out)).returncode == 0 and out.read_text() == log.stdout
        key = tmp_path / "data" / "cades-tui" / "keys" / "cades-tui"
        key.chmod(0o644)  # as a copy or an unzip may leave it: OpenSSH refuses it with a raw warning, exit 255
        try:
            r = cades(env, "ssh", "ssh-vm", "--", "true")
        finally:
            key.chmod(0o600)
        assert r.returncode == 2, r.stderr
        assert f"private key {key} is readable by others (mode 0644)" in r.stderr and f"chmod 600 {key}" in r.stderr
        assert "UNPROTECTED" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        plan = cades(env, "setup", "ssh-vm", "--dry-run")
        assert plan.returncode == 0
        assert "[4/8] python:" in plan.stdout and "uv" in plan.stdout
        assert "jupyter_server_config" in plan.stdout
    finally:
        cades(env, "delete", "ssh-vm", "--yes", "--delete-volumes")


def test_ssh_to_unknown_instance_is_one_line(env: dict[str, str]) -> None:
    r = cades(env, "ssh", "nope")
    assert r.returncode == 1 and "Traceback" not in r.stderr and "not found" in r.stderr


def test_demo_key_is_adopted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.conventions import DEMO_KEY
    from tui.core.demo import start_demo
    from tui.core.keys import KeyStore
    from tui.startup import start_sandbox

    demo = start_demo(start_sandbox, tmp_path / "sb")
    try:
        key = KeyStore().private_path(DEMO_KEY)
        assert key.exists() and oct(key.stat().st_mode & 0o777) == "0o600"
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(demo.clouds_yaml))
        monkeypatch.setenv("OS_CLOUD", "sandbox")
        assert main(["ssh", "analytics-1", "--", "true"]) == 0
    finally:
        demo.stop()


def test_demo_option_after_the_name_and_before_the_remote_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capfd: pytest.CaptureFixture[str]) -> None:
    """`ssh NAME --demo -- CMD`, like every other command that takes --demo after NAME."""
    from tui.core.demo import start_demo
    from tui.startup import start_sandbox

    monkeypatch.setenv("CADES_TUI_SANDBOX_DIR", str(tmp_path / "sb"))
    try:
        assert main(["ssh", "analytics-1", "--demo", "--", "echo", "demo-says-hi"]) == 0, capfd.readouterr().err
        assert "demo-says-hi" in capfd.readouterr().out
    finally:  # the demo keeps its VMs running, as a cloud does: power them off for real
        demo = start_demo(start_sandbox, tmp_path / "sb")
        demo.sandbox.stop()
        demo.lock.close() if demo.lock else None


def test_demo_vms_keep_running_while_the_app_is_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    """A detached screen session (where Jupyter lives) survives the demo's sandbox going away and coming back."""
    from tui.core.demo import start_demo
    from tui.startup import start_sandbox

    demo = start_demo(start_sandbox, tmp_path / "sb")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(demo.clouds_yaml))
    monkeypatch.setenv("OS_CLOUD", "sandbox")
    try:
        assert main(["ssh", "analytics-1", "--", "screen -dmS keepme sleep 300"]) == 0
    finally:
        demo.stop()
    demo = start_demo(start_sandbox, tmp_path / "sb")
    try:
        capfd.readouterr()
        assert main(["ssh", "analytics-1", "--", "screen -ls keepme"]) == 0
        assert "keepme" in capfd.readouterr().out
        demo.sandbox.stop()  # power off for real: the session ends with the VM
    finally:
        demo.lock.close() if demo.lock else None
