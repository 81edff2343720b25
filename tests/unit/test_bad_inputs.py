"""The bad-input corpus, part 1: profile keys and values, environment variables and clouds.yaml files, each refused
with one line that names the file:line / key / variable and the value, exit code 2 and no traceback — never a silent
accept. Profiles go through the loader in-process (fast); the environment and clouds.yaml through `main()` (the
command's real path: prepare, open the cloud, print the error); a few through a real process to prove the whole path.
Part 2, the command-line arguments against the sandbox cloud: tests/cli/test_bad_inputs_cli.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tui.__main__ import main
from tui.core.config import ConfigError, load_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "config" / "cades-tui.example.yaml").read_text()

# (profile text, what the one line must say); the line must also start with the file's path and ':'
PROFILES: list[tuple[str, str]] = [
    # the keymap: ids, Textual's key grammar, clashes (quit must stay reachable)
    ("keymap:\n  lanuch: ctrl+n\n", ":2: keymap: unknown action id 'lanuch' — did you mean 'launch'?"),
    ("keymap:\n  Launch: n\n", ":2: keymap: unknown action id 'Launch'"),
    ("keymap:\n  frobnicate: n\n", "unknown action id 'frobnicate' — the README's Keys section lists them"),
    ("keymap:\n  launch: ctrl+nn\n", ":2: keymap.launch: 'ctrl+nn' is not a key: 'nn' is neither one character"),
    ("keymap:\n  launch: f25\n", "keymap.launch: 'f25' is not a key"),
    ("keymap:\n  launch: escap\n", "did you mean 'escape'?"),
    ("keymap:\n  launch: ctrl+ctrl+n\n", "keymap.launch: expected each modifier at most once"),
    ("keymap:\n  launch: cmd+n\n", "keymap.launch: expected keys as text like 'ctrl+n'"),
    ("keymap:\n  launch: q\n", ":2: keymap.launch: 'q' is already quit's key on the main screen — pick another"),
    ("keymap:\n  setup: n\n", ":2: keymap.setup: 'n' is already launch's key on the main screen"),
    ("keymap:\n  launch: y\n  setup: y\n", ":3: keymap.setup: 'y' is already launch's key"),  # m is transfers'
    ("keymap:\n  help: '?'\n  quit: '?'\n", ":3: keymap.quit: 'question_mark' is already help's key"),
    ("keymap:\n  pane.flavors: tab\n", "'tab' is already pane.next's key on the main screen"),
    ("keymap:\n  cluster.create: q\n", "'q' is already cluster.close's key on the cluster screen"),
    ("keymap:\n  launch: n\n  launch: m\n", ":3: keymap.launch: given twice"),
    ("keymap:\n  launch: [ctrl+n]\n", "keymap.launch: expected keys as text"),
    ("keymap: ctrl+n\n", ":1: keymap: expected a mapping like 'launch: ctrl+n'"),
    ("keymap:\n  launch: ''\n", "keymap.launch: expected keys as text"),
    # ui
    ("ui:\n  theme: nope\n", ":2: ui.theme: expected one of Textual's themes"),
    ("ui:\n  theme: Textual-Dark\n", ":2: ui.theme: expected one of Textual's themes"),
    ("ui:\n  theme: ''\n", ":2: ui.theme: expected one of Textual's themes"),
    ("ui:\n  theme: 3\n", ":2: ui.theme: expected one of"),
    ("ui:\n  refresh_s: 0.1\n", ":2: ui.refresh_s: expected seconds between refreshes"),
    ("ui:\n  refresh_s: fast\n", ":2: ui.refresh_s: expected a number"),
    # setup.extra_packages: every item checked, none dropped
    ('setup:\n  extra_packages: ["-e /etc"]\n', ":2: setup.extra_packages item: expected a package name"),
    ("setup:\n  extra_packages:\n    - numpy\n    - numpy; rm -rf ~\n", ":4: setup.extra_packages item"),
    ("setup:\n  extra_packages: [http://example.org/x.whl]\n", "setup.extra_packages item"),
    ("setup:\n  extra_packages: [../pkg]\n", "setup.extra_packages item"),
    ("setup:\n  extra_packages: [numpy pandas]\n", "setup.extra_packages item"),
    ("setup:\n  extra_packages: [--index-url=http://x]\n", "setup.extra_packages item"),
    ("setup:\n  extra_packages: ['$(reboot)']\n", "setup.extra_packages item"),
    ("setup:\n  extra_packages: ['']\n", "setup.extra_packages: expected text items"),
    ("setup:\n  extra_packages: [[numpy]]\n", "setup.extra_packages: expected text items"),
    ("setup:\n  extra_packages: [1.5]\n", "setup.extra_packages: expected text items"),
    ("setup:\n  extra_packages: numpy\n", "setup.extra_packages: expected a list"),
    ("setup:\n  installer_url: ftp://example.org/x.sh\n", ":2: setup.installer_url: expected empty"),
    ("setup:\n  installer_url: https://x/a.sh; reboot\n", ":2: setup.installer_url: expected"),
    ("setup:\n  install_method: conda\n", ":2: setup.install_method: expected one of uv, miniforge, anaconda"),
    ("setup:\n  env_path: ~/..\n", ":2: setup.env_path: expected"),
    # launch
    ("launch:\n  volume_size_gb: 0\n", ":2: launch.volume_size_gb: expected an integer number of GB, 16-16384"),
    ("launch:\n  volume_size_gb: 15\n", "launch.volume_size_gb: expected an integer number of GB, 16-16384"),
    ("launch:\n  volume_size_gb: -16\n", "launch.volume_size_gb: expected"),
    ("launch:\n  volume_size_gb: 16.5\n", "launch.volume_size_gb: expected an integer"),
    ("launch:\n  volume_size_gb: 100000\n", "launch.volume_size_gb: expected"),
    ("launch:\n  flavor: [m1.small]\n", ":2: launch.flavor: expected text"),
    ("launch:\n  delete_volume_on_termination: 1\n", "launch.delete_volume_on_termination: expected true or false"),
    ("launch:\n  volume: 16\n", ":2: unknown key 'launch.volume'"),
    # ssh
    ("ssh:\n  user: root;id\n", ":2: ssh.user: expected a POSIX user name"),
    ("ssh:\n  jump_host: -oProxyCommand=x\n", ":2: ssh.jump_host: expected empty, or a jump host"),
    ("ssh:\n  jump_host: me@login example\n", ":2: ssh.jump_host: expected"),
    ("ssh:\n  keepalive_s: 99999\n", ":2: ssh.keepalive_s: expected seconds between keepalives"),
    ("ssh:\n  usr: cades\n", ":2: unknown key 'ssh.usr'"),
    # jupyter, idle, cluster
    ("jupyter:\n  app: lab2\n", ":2: jupyter.app: expected one of lab, notebook"),
    ("jupyter:\n  port: '8889'\n", ":2: jupyter.port: expected an integer"),
    ("jupyter:\n  session_name: a;b\n", ":2: jupyter.session_name: expected a session name"),
    ("idle:\n  stop_after_hours: never\n", ":2: idle.stop_after_hours: expected a number"),
    ("cluster:\n  memory_fraction: 2\n", ":2: cluster.memory_fraction: expected a fraction"),
    ("cluster:\n  dashboard_port: 8786\n", ":2: cluster.dashboard_port: expected a port other than"),
    # the file and its YAML: the line of the mistake, not the line after
    ("cloud: ''\n", ":1: cloud: expected the name of a clouds.yaml entry"),
    ("jupyterr:\n  port: 1\n", ":1: unknown key 'jupyterr'"),
    ("cloud: a\ncloud: b\n", ":2: cloud: given twice"),
    ("- cloud: a\n", ":1: expected a mapping of settings at the top level"),
    ("cloud: a\nlaunch:\n  flavor m1.small\n  volume_size_gb: 16\n", ":3: malformed YAML: a key without ':'"),
    ("cloud: a\nb\nc: 2\n", ":2: malformed YAML: a key without ':'"),
    ("launch:\n\tflavor: x\n", ":2: malformed YAML: a tab — indent with spaces only"),
    ("cloud: 'sandbox\nui: {}\n", ":1: malformed YAML: a quote opened on this line is never closed"),
    ("setup:\n  extra_packages: [numpy, scipy\nui: {}\n", ":2: malformed YAML: a '[' list opened on this line"),
    ("ssh:\n  user: x\n   keepalive_s: 15\n", ":3: malformed YAML: a ':' where no key can start"),
    ("ssh:\n  user: a: b\n", ":2: malformed YAML: a value with ': ' in it — put the value in quotes"),
    ("ssh:\n  user: x\n jump_host: y\n", ":3: malformed YAML: this line is indented unlike the lines around it"),
]


def write(tmp_path: Path, text: str | bytes, name: str = "profile.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def one_line(message: str) -> str:
    assert "\n" not in message.strip(), message
    assert "Traceback" not in message
    return message


@pytest.mark.parametrize(("text", "expected"), PROFILES)
def test_bad_profile_is_one_line_naming_file_line_key_and_value(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_file(path)
    message = one_line(str(info.value))
    assert message.startswith(f"{path}:"), message
    assert expected in message, message


def test_a_missing_colon_on_line_30_is_reported_at_line_30(tmp_path: Path) -> None:
    """PyYAML's problem mark is on line 31 (where the scanner gives up); the mistake is line 30."""
    lines = EXAMPLE.splitlines()
    assert lines[29].startswith("  port: 8889")
    lines[29] = lines[29].replace("port:", "port", 1)
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as info:
        load_file(path)
    assert str(info.value).startswith(f"{path}:30: malformed YAML: a key without ':'"), info.value


def test_good_keymaps_load(tmp_path: Path) -> None:
    """Moving quit first frees q for another action; keys of different screens may repeat; '?' is question_mark."""
    s = load_file(write(tmp_path, "keymap:\n  quit: ctrl+q\n  launch: q\n  cluster.create: ctrl+n\n  help: '?'\n"))
    assert dict(s.keymap) == {"quit": "ctrl+q", "launch": "q", "cluster.create": "ctrl+n", "help": "question_mark"}
    assert load_file(write(tmp_path, "setup:\n  extra_packages: [numpy>=2, 'dask[complete]', xarray==2024.1]\n")
                     ).setup.extra_packages == ("numpy>=2", "dask[complete]", "xarray==2024.1")


# -- the environment and clouds.yaml, through main() ---------------------------------------------------------


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, err


CLOUDS_YAML: list[tuple[str, str]] = [
    ("clouds:\n  c1:\n    auth:\n      username: u\n      password: p\n      project_name: x\n",
     "clouds.c1.auth.auth_url is missing"),
    ("clouds:\n  c1:\n    auth:\n      auth_url: http://127.0.0.1:9/v3\n     username: y\n",
     ":5: not valid YAML: this line is indented unlike the lines around it"),
    ("clouds:\n  c1:\n    auth:\n      auth_url http://127.0.0.1:9/v3\n      username: y\n",
     ":4: not valid YAML: a key without ':'"),
    ("clouds:\n  c1:\n\tauth: {}\n", ":3: not valid YAML: a tab"),
    ("clouds:\n  c1:\n    auth: {auth_url: 'http://x\n", ":3: not valid YAML: a quote opened on this line"),
    ("clouds:\n  other:\n    auth: {auth_url: http://127.0.0.1:9/v3}\n", "cloud 'c1' is not in"),
    ("clouds: {}\n", "cloud 'c1' is not in"),
    ("clouds:\n  c1:\n    region_name: x\n", "clouds.c1.auth.auth_url is missing"),
    ("clouds: 3\n", ":1: clouds: expected a mapping of named clouds"),
    ("clouds:\n  c1: 3\n", ":2: clouds.c1: expected a mapping with auth:"),
    ("clouds:\n  c1:\n    auth: 3\n", ":3: clouds.c1.auth: expected a mapping like"),
    ("clouds:\n  c1:\n    auth:\n      auth_url: 3\n", ":4: clouds.c1.auth.auth_url: expected the Identity"),
    ("clouds:\n  c1:\n    auth: {auth_url: not-a-url, username: u, password: p}\n",
     ":3: clouds.c1.auth.auth_url: expected the Identity (Keystone) URL"),
    ("clouds:\n  c1:\n    auth_type: bogus\n    auth: {auth_url: 'http://127.0.0.1:9/v3'}\n",
     ":3: clouds.c1.auth_type: expected one of"),
    ("clouds:\n  c1:\n    auth_type: v3applicationcredential\n"
     "    auth: {auth_url: 'http://127.0.0.1:9/v3', application_credential_id: x}\n",
     ":4: clouds.c1.auth.application_credential_secret is missing"),
]


@pytest.mark.parametrize(("text", "expected"), CLOUDS_YAML)
def test_bad_clouds_yaml_exit_2_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str], text: str, expected: str) -> None:
    path = write(tmp_path, text, "clouds.yaml")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    monkeypatch.chdir(tmp_path.parent)  # no ./clouds.yaml here
    code, err = run_main(capsys, "--cloud", "c1", "list")
    assert code == 2, err
    line = one_line(err.strip())
    assert line.startswith("cades-tui: error: ") and str(path) in line and expected in line, line


ENVIRONMENT: list[tuple[dict[str, str], str]] = [
    ({"CADES_TUI_CONFIG": "{tmp}/missing.yaml"}, "{tmp}/missing.yaml: file not found"),
    ({"CADES_TUI_CONFIG": "{tmp}"}, "{tmp}: cannot read"),
    ({"CADES_TUI_CONFIG": "{tmp}/bad.yaml"}, "{tmp}/bad.yaml:1: unknown key 'clod'"),
    ({"XDG_CONFIG_HOME": "{tmp}/xdg"}, "{tmp}/xdg/cades-tui/config.yaml:1: unknown key 'clod'"),
    ({"CADES_TUI_FORWARDER": "opensssh"}, "$CADES_TUI_FORWARDER='opensssh': expected one of auto, openssh, asyncssh"),
    ({"CADES_TUI_CONFIG": "{tmp}/binary.yaml"}, "{tmp}/binary.yaml: cannot read"),
    ({"CADES_TUI_SANDBOX_DIR": "{tmp}/bad.yaml"}, "$CADES_TUI_SANDBOX_DIR='{tmp}/bad.yaml': {tmp}/bad.yaml is not a"),
    ({"XDG_STATE_HOME": "{tmp}/bad.yaml"}, "$XDG_STATE_HOME='{tmp}/bad.yaml': {tmp}/bad.yaml is not a folder"),
    ({"XDG_DATA_HOME": "{tmp}/bad.yaml/sub"}, "$XDG_DATA_HOME='{tmp}/bad.yaml/sub': {tmp}/bad.yaml is not a folder"),
    ({"OS_CLIENT_CONFIG_FILE": "{tmp}/bad-clouds.yaml"}, "{tmp}/bad-clouds.yaml:2: not valid YAML"),
    ({"OS_CLIENT_CONFIG_FILE": "{tmp}/clouds.yaml", "OS_CLOUD": "nosuch"},
     "cloud 'nosuch' is not in {tmp}/clouds.yaml"),
]


@pytest.mark.parametrize(("env", "expected"), ENVIRONMENT)
def test_bad_environment_exit_2_naming_the_variable_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str],
                                                            env: dict[str, str], expected: str) -> None:
    write(tmp_path, "clod: x\n", "bad.yaml")
    write(tmp_path, b"\xff\xfe\x00bad", "binary.yaml")
    write(tmp_path, "clouds:\n  c1 x\n  d: 1\n", "bad-clouds.yaml")
    write(tmp_path, "clouds:\n  c1:\n    auth: {auth_url: 'http://127.0.0.1:9/v3'}\n", "clouds.yaml")
    (tmp_path / "xdg" / "cades-tui").mkdir(parents=True)
    write(tmp_path / "xdg" / "cades-tui", "clod: x\n", "config.yaml")
    monkeypatch.chdir(tmp_path.parent)
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    code, err = run_main(capsys, "list")
    assert code == 2, err
    line = one_line(err.strip())
    assert expected.format(tmp=tmp_path) in line, line


# -- a few through a real process: the whole path, stderr as the user sees it ------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize(("text", "args", "expected"), [
    ("ui:\n  theme: nope\n", ["list"], ":2: ui.theme: expected one of Textual's themes"),
    ('setup:\n  extra_packages: ["-e /etc"]\n', ["setup", "vm", "--dry-run"], ":2: setup.extra_packages item"),
    ("keymap:\n  lanuch: ctrl+n\n", ["list"], "unknown action id 'lanuch'"),
])
def test_real_process_one_line_exit_2(tmp_path: Path, text: str, args: list[str], expected: str) -> None:
    path = write(tmp_path, text)
    result = run_cli("--config", str(path), *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"cades-tui: error: {path}:") and expected in line, line


def test_the_app_refuses_an_unknown_theme_before_it_starts(tmp_path: Path) -> None:
    """Without a command the full-screen app starts: an unknown theme used to crash it; now the profile is refused
    first (exit 2, one line) and no screen is drawn."""
    path = write(tmp_path, "ui:\n  theme: no-such-theme\n")
    result = run_cli("--config", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"cades-tui: error: {path}:2: ui.theme: expected one of Textual's themes: ")
    assert line.endswith("got 'no-such-theme'")


def test_corpus_size() -> None:
    """At least 100 bad inputs in this corpus and its CLI half (tests/cli/test_bad_inputs_cli.py)."""
    from tests.cli.test_bad_inputs_cli import CLI_CASES

    total = len(PROFILES) + len(CLOUDS_YAML) + len(ENVIRONMENT) + 4 + len(CLI_CASES)
    assert total >= 100, total


def test_every_suggested_command_is_built_by_hints() -> None:
    """A command the app suggests in a message ("see `cades-tui list`") is built by tui.core.hints.command, so under
    --demo (or --config, --cloud) it carries them and works as printed: no string literal spells one out."""
    import io
    import re
    import tokenize

    spelt = re.compile(r"cades-tui (list|launch|show|open|setup|status|volume|keypair|flavors|images|quota|resize|"
                       r"start|stop|tunnel|jupyter|delete|ssh|commands|console|reboot|cluster)\b(?!:)")
    skipped = {"sandbox"}  # the sandbox suggests no cades-tui command
    found = []
    for path in sorted((ROOT / "tui").rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[1] in skipped or rel.as_posix() == "tui/core/hints.py":
            continue
        for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            docstring = token.string.lstrip("rfbuRFBU").startswith(('"""', "'''"))
            if token.type == tokenize.STRING and not docstring and spelt.search(token.string):
                found.append(f"{rel}:{token.start[0]}: {token.string[:80]}")
    assert not found, "\n".join(found)


def test_a_file_we_cannot_write_is_one_line_not_a_traceback(capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The last net of every command: an OSError (a full disk, a folder without write permission) is one line."""
    import argparse
    import errno

    from tui.cli import dispatch

    def handler(args: argparse.Namespace, ctx: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", "/srv/state/cades-tui/state.json")

    code = dispatch.run(argparse.Namespace(raw=False, handler=handler))
    _, err = capsys.readouterr()
    assert code == 1
    assert one_line(err.strip()) == ("cades-tui: error: Permission denied (/srv/state/cades-tui/state.json) — check "
                                     "that folder's permissions and free space")
