"""The bad-input corpus, part 2: command-line arguments against the real sandbox cloud (openstacksdk over HTTP).

Each case: the exit code (2 bad input refused before asking the cloud; 1 the cloud refuses or has no such thing), a
short message on stderr naming the input, no traceback, and nothing created (no silent accept). Run in-process
through `main()` (the command's real path) against the session's sandbox; a few run as real processes with `--demo`
to prove the printed hints work as printed. Part 1 (profile, environment, clouds.yaml): tests/unit/test_bad_inputs.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tui.__main__ import main

VM = "badin-vm"
FP_EXAMPLE = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"

# (argv, exit code, what stderr must contain); "{tmp}" is a scratch folder
CLI_CASES: list[tuple[list[str], int, str]] = [
    # launch: names, sizes, choices
    (["launch", "my vm"], 2, "instance name 'my vm' is not allowed"),
    (["launch", "-dash"], 2, "the following arguments are required: name"),
    (["launch", "x;reboot"], 2, "instance name 'x;reboot' is not allowed"),
    (["launch", "bad-size", "--volume-size", "0"], 2, "boot volume of 0 GB is too small: the guide asks for at least"),
    (["launch", "bad-size", "--volume-size", "15"], 2, "boot volume of 15 GB is too small"),
    (["launch", "bad-size", "--volume-size", "-3"], 2, "boot volume of -3 GB is too small"),
    (["launch", "bad-size", "--volume-size", "abc"], 2, "argument --volume-size: invalid int value: 'abc'"),
    (["launch", "bad-size", "--volume-size", "5000"], 1,
     "a 5000 GB boot volume does not fit the volume quota (gigabytes):"),
    (["launch", "bad-flavor", "--flavor", "m9.huge"], 1, "flavor 'm9.huge' not found"),
    (["launch", "bad-flavor", "--flavor", "m1.xlarge"], 1, "flavor m1.xlarge does not fit the remaining quota"),
    (["launch", "bad-image", "--image", "Windows 95"], 1, "image 'Windows 95' not found"),
    (["launch", "bad-net", "--network", "nonet"], 1, "network 'nonet' not found"),
    (["launch", "bad-key", "--key", "nokey"], 1, "key pair 'nokey' not found"),
    (["launch", VM], 2, f"an instance named '{VM}' already exists"),
    # volumes
    (["volume", "create", "a b", "--size", "1"], 2, "volume name 'a b' is not allowed"),
    (["volume", "create", "$(reboot)", "--size", "1"], 2, "volume name '$(reboot)' is not allowed"),
    (["volume", "create", "v-ok", "--size", "0"], 2, "--size 0: a volume needs at least 1 GB"),
    (["volume", "create", "v-ok", "--size", "big"], 2, "argument --size: invalid int value: 'big'"),
    (["volume", "create", "v-ok"], 2, "the following arguments are required: --size"),
    (["volume", "create", "v-ok", "--size", "1", "--attach", "novm"], 1, "instance 'novm' not found"),
    (["volume", "delete", "novol", "--yes"], 1, "volume 'novol' not found"),
    (["volume", "detach", "novol"], 1, "volume 'novol' not found"),
    (["volume", "frob"], 2, "argument ACTION: invalid choice: 'frob'"),
    # host key fingerprints: checked even when the console log pins the key (then it used to be ignored)
    (["setup", VM, "--accept-host-key", "abc"], 2, "'abc' is not a host key fingerprint: expected SHA256:"),
    (["setup", VM, "--accept-host-key", "SHA256:short"], 2, "'SHA256:short' is not a host key fingerprint"),
    (["setup", VM, "--accept-host-key", "MD5:aa:bb:cc"], 2, "is not a host key fingerprint"),
    (["setup", VM, "--accept-host-key", FP_EXAMPLE[:-1] + "!"], 2, "is not a host key fingerprint"),
    (["ssh", VM, "--accept-host-key", "sha256:" + FP_EXAMPLE[7:]], 2, "is not a host key fingerprint"),
    (["jupyter", "start", VM, "--accept-host-key", ""], 2, "'' is not a host key fingerprint"),
    # the command log
    (["commands", VM, "-o", "/nonexistent/dir/f"], 2, "-o /nonexistent/dir/f: cannot write (No such file or"),
    (["commands", VM, "-o", "{tmp}"], 2, "cannot write (Is a directory)"),
    (["commands", "novm"], 1, "instance 'novm' not found"),
    # resize, power, show, delete
    (["resize", VM], 2, "resize needs a FLAVOR (or --confirm / --revert)"),
    (["resize", VM, "c1.small", "--confirm"], 2, "resize --confirm takes no FLAVOR"),
    (["resize", VM, "--confirm", "--revert"], 2, "not allowed with argument"),
    (["resize", VM, "m9.huge"], 1, "flavor 'm9.huge' not found"),
    (["resize", VM, "m1.xlarge"], 1, "over the quota — RAM: this needs 30 GiB more"),
    (["resize", "novm", "c1.small"], 1, "instance 'novm' not found"),
    (["show", "novm"], 1, "instance 'novm' not found"),
    (["stop", "novm"], 1, "instance 'novm' not found"),
    (["delete", "novm", "--yes"], 1, "instance 'novm' not found"),
    (["console", "novm"], 1, "instance 'novm' not found"),
    # Jupyter and tunnels
    (["jupyter", "logs", VM, "-n", "-1"], 2, "--lines -1: expected a number of lines"),
    (["jupyter", "start", VM, "--local-port", "70000"], 2, "--local-port 70000: expected a TCP port 1-65535"),
    (["tunnel", VM, "--local-port", "0"], 2, "--local-port 0: expected a TCP port 1-65535"),
    (["open", VM, "--local-port", "-1"], 2, "--local-port -1: expected a TCP port"),
    (["tunnel", VM, "--local-port", "http"], 2, "argument --local-port: invalid int value: 'http'"),
    # key pairs
    (["keypair", "import", "{tmp}/missing.pub"], 2, "missing.pub: cannot read (No such file or directory)"),
    (["keypair", "import", "{tmp}/id_private"], 2, "id_private: not an OpenSSH public key"),
    (["keypair", "generate", "bad name"], 2, "key name 'bad name': use letters, digits"),
    (["keypair", "import", "{tmp}/binary.pub"], 2, "binary.pub: cannot read (not text)"),
    (["keypair", "import", "{tmp}/ok.pub", "--name", "bad name"], 2, "key pair name 'bad name' is not allowed"),
    (["launch", "imp", "--key", "import:{tmp}/missing.pub"], 2, "missing.pub: cannot read (No such file"),
    (["launch", "imp", "--key", "import:{tmp}/id_private"], 2, "id_private: not an OpenSSH public key"),
    # empty names: refused here, not sent to the cloud (it answered "'server'")
    (["show", ""], 2, "argument name: '' is empty"),
    (["delete", "", "--yes"], 2, "argument name: '' is empty"),
    (["setup", ""], 2, "argument name: '' is empty"),
    (["volume", "delete", "", "--yes"], 2, "argument name: '' is empty"),
    (["commands", ""], 2, "argument name: '' is empty"),
    (["launch", "empty-opt", "--flavor", ""], 2, "argument --flavor: '' is empty"),
    (["launch", "empty-opt", "--image", ""], 2, "argument --image: '' is empty"),
    (["launch", "empty-opt", "--network", " "], 2, "argument --network: ' ' is empty"),
    (["launch", "empty-opt", "--key", ""], 2, "argument --key: '' is empty"),
    (["volume", "create", "v-ok", "--size", "1", "--attach", ""], 2, "argument --attach: '' is empty"),
    # the profile's ssh.key_path: a public key, or no key at all (it said "chmod 600" the file)
    (["--config", "{tmp}/key-pub.yaml", "ssh", VM, "--", "true"], 2, "ok.pub is a public key: SSH logs in with"),
    (["--config", "{tmp}/key-text.yaml", "ssh", VM, "--", "true"], 2, "binary.pub is not an SSH private key"),
    (["--config", "{tmp}/key-missing.yaml", "setup", VM], 1, "SSH private key file not found: {tmp}/nokey"),
    # autostop: durations, actions, options that exclude each other, no idle period anywhere
    (["autostop", VM, "--idle", "1m"], 2, "autostop: idle 1m: expected at least 5m"),
    (["autostop", VM, "--idle", "soon"], 2, "idle 'soon': expected a duration like 90s, 45m, 2h or 1d"),
    (["autostop", VM, "--action", "hibernate"], 2, "invalid choice: 'hibernate'"),
    (["autostop", VM, "--off", "--keep"], 2, "not allowed with argument"),
    (["autostop", VM, "--action", "stop"], 2, "no idle period — the profile's autostop.idle is off"),
    (["autostop", "no-such-vm", "--keep"], 1, "no-such-vm"),
    # the foreground sandbox
    (["sandbox", "--port", "70000"], 2, "--port 70000: expected a TCP port 1-65535, or 0"),
    (["sandbox", "--port", "-1"], 2, "--port -1: expected a TCP port"),
    (["sandbox", "--state-dir", "{tmp}/ok.pub"], 2, "ok.pub: not a folder"),
    # the command line itself
    (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    (["list", "--bogus"], 2, "unrecognized arguments: --bogus"),
    (["status", "--show-tokens"], 2, "unrecognized arguments: --show-tokens"),
    (["--config", "{tmp}/missing.yaml", "list"], 2, "missing.yaml: file not found"),
    (["--cloud", "nosuch", "list"], 2, "cloud 'nosuch' is not in"),
]


@pytest.fixture(scope="module")
def vm(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One ACTIVE instance of the session's sandbox, launched with the app's own key pair (in this module's XDG
    dirs, kept across its tests), deleted at the end."""
    env = {"OS_CLIENT_CONFIG_FILE": str(sandbox.clouds_yaml), "OS_CLOUD": "sandbox"}
    xdg = tmp_path_factory.mktemp("badin-xdg")
    env |= {var: str(xdg / var.lower()) for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")}
    full = {**os.environ, **env}
    out = subprocess.run([sys.executable, "-m", "tui", "launch", VM, "--wait", "--json"], capture_output=True,
                         text=True, timeout=180, env=full)
    assert out.returncode == 0, out.stderr
    try:
        yield {**json.loads(out.stdout), "env": env}
    finally:
        subprocess.run([sys.executable, "-m", "tui", "delete", VM, "--yes", "--delete-volumes"], capture_output=True,
                       timeout=180, env=full)


@pytest.fixture
def cli(vm: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    for name, value in vm["env"].items():
        monkeypatch.setenv(name, value)

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    return run


def _names(run: Any) -> set[str]:
    code, out, _ = run("list", "--json")
    assert code == 0
    return {i["name"] for i in json.loads(out)}


def _volumes(run: Any) -> set[str]:
    code, out, _ = run("volume", "list", "--json")
    assert code == 0
    return {v["name"] for v in json.loads(out)}


def _cloud(run: Any) -> tuple[set[str], ...]:
    return _names(run), _volumes(run), _keypairs(run)


def _keypairs(run: Any) -> set[str]:
    code, out, _ = run("keypair", "list", "--json")
    assert code == 0
    return {k["name"] for k in json.loads(out)}


@pytest.mark.parametrize(("argv", "code", "expected"), CLI_CASES, ids=[" ".join(c[0])[:60] for c in CLI_CASES])
def test_bad_cli_input(cli: Any, vm: dict[str, Any], tmp_path: Path, argv: list[str], code: int,
                       expected: str) -> None:
    (tmp_path / "id_private").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n-----END OPENSSH PRIVATE KEY-----\n")
    (tmp_path / "binary.pub").write_bytes(b"\xff\xfe\x00")
    (tmp_path / "ok.pub").write_text("ssh-ed25519 "
                                     "AAAAC3NzaC1lZDI1NTE5AAAAIG2qCh1DAP4XWh6dy8Zb6/Zg4G0CwFa8iSRNMF4Mr3Qb x\n")
    for name, key in (("key-pub", "ok.pub"), ("key-text", "binary.pub"), ("key-missing", "nokey")):
        (tmp_path / f"{name}.yaml").write_text(f"ssh:\n  key_path: {tmp_path / key}\n  use_ssh_config: false\n")
    before = vm.setdefault("cloud", _cloud(cli))  # what the cloud holds with only this module's VM: never changes
    got, _, err = cli(*[a.format(tmp=tmp_path) for a in argv])
    assert got == code, f"exit {got} != {code}: {err}"
    # one line (argparse adds its usage above it; a command that got as far as connecting said so)
    lines = [line for line in err.strip().splitlines() if not line.startswith(("usage:", " ", "Connecting to "))]
    assert len(lines) == 1, err
    assert expected.format(tmp=tmp_path) in lines[0], lines[0]
    assert _cloud(cli) == before, "a refused command created something"


def test_keypair_list_finds_the_apps_own_private_key(cli: Any, vm: dict[str, Any]) -> None:
    """The app's key pair is named cades-tui-<digest> in the cloud and its private key is stored as `cades-tui`:
    matched by the key, not the name (it said "no")."""
    _, out, _ = cli("keypair", "list")
    row = next(line for line in out.splitlines() if line.startswith(vm["key_name"]))
    assert row.split()[-1] == "yes", out


def test_a_missing_private_key_names_the_file(cli: Any, vm: dict[str, Any]) -> None:
    """Instead of "refused the agent's and default keys … Permission denied"."""
    key = Path(vm["env"]["XDG_DATA_HOME"]) / "cades-tui" / "keys" / "cades-tui"
    hidden = key.with_name("cades-tui.away")
    key.rename(hidden)
    try:
        code, _, err = cli("ssh", VM, "--", "true")
    finally:
        hidden.rename(key)
    assert code == 1, err
    (line,) = [line for line in err.splitlines() if line.startswith("cades-tui: error:")]
    assert f"SSH private key file not found: {key}" in line and "restore it" in line and "ssh.key_path" in line


def test_hints_printed_under_demo_carry_demo_and_work_as_printed(tmp_path: Path) -> None:
    """`--demo` runs print hints with `--demo` (they failed as printed without it); running the hint works."""
    env = {**os.environ, **{v: str(tmp_path / v.lower()) for v in ("XDG_CONFIG_HOME", "XDG_DATA_HOME",
                                                                     "XDG_STATE_HOME")}}
    env["CADES_TUI_SANDBOX_DIR"] = str(tmp_path / "sb")
    result = subprocess.run([sys.executable, "-m", "tui", "--demo", "show", "no-such-vm"], capture_output=True,
                            text=True, timeout=180, env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    hint = re.search(r"see `(cades-tui [^`]+)`", result.stderr)
    assert hint is not None and hint.group(1) == "cades-tui --demo list", result.stderr
    argv = hint.group(1).split()[1:]
    again = subprocess.run([sys.executable, "-m", "tui", *argv], capture_output=True, text=True, timeout=180, env=env)
    assert again.returncode == 0 and "analytics-1" in again.stdout, again.stderr


def test_hints_carry_config_and_cloud() -> None:
    from tui.core import hints

    try:
        hints.set_invocation(config="/p/my profile.yaml", cloud="prod")
        assert hints.command("open", "vm1") == "cades-tui --config '/p/my profile.yaml' --cloud prod open vm1"
        hints.set_invocation(demo=True, cloud="ignored")
        assert hints.command("status", "--show-token") == "cades-tui --demo status --show-token"
    finally:
        hints.set_invocation()
    assert hints.command("setup", "vm1") == "cades-tui setup vm1"


def test_sandbox_exits_130_on_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tui", "sandbox", "--state-dir", str(tmp_path / "sb")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")})
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:  # until the sandbox says it serves (or ends: then the assert says why)
            lines.append(line)
            if "Press Ctrl+C" in line:
                break
        assert "Press Ctrl+C" in lines[-1], lines
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def test_hints_carry_config_and_end_with_the_command(cli: Any, vm: dict[str, Any], tmp_path: Path) -> None:
    from tui.core import hints

    profile = tmp_path / "my profile.yaml"
    profile.write_text(f"cloud: sandbox\nclouds_yaml: {vm['env']['OS_CLIENT_CONFIG_FILE']}\n")
    code, _, err = cli("--config", str(profile), "show", "novm")
    assert code == 1 and f"see `cades-tui --config '{profile}' list`" in err, err
    assert hints.command("list") == "cades-tui list"  # the next command in this process starts clean
