"""Profiles: lookup order, overrides, and one clear line for every kind of bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tui.core import paths
from tui.core.config import DEFAULTS, ClusterSettings, ConfigError, Settings, load_file, load_settings
from tui.core.guide.settings import InstallMethod, SetupSpec, VolumeSpec
from tui.core.jupyter.server import JupyterSpec

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    return path


def test_example_profile_loads_and_matches_the_guide() -> None:
    s = load_file(ROOT / "config" / "cades-tui.example.yaml")
    assert s.cloud == "cades"
    assert s.launch.volume_size_gb == 16
    assert s.jupyter.port == 8889
    assert s.setup.install_method == "uv"
    assert s.keymap == {}


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    s = load_file(write(tmp_path, "# nothing\n"))
    assert s.launch == Settings().launch
    assert s.source.endswith("profile.yaml")


def test_values_and_sections(tmp_path: Path) -> None:
    s = load_file(write(tmp_path, """
cloud: mycloud
launch: {flavor: c1.large, volume_size_gb: 40}
setup:
  extra_packages: [xarray, dask]
ui: {refresh_s: 2}
keymap: {launch: ctrl+n}
"""))
    assert (s.cloud, s.launch.flavor, s.launch.volume_size_gb) == ("mycloud", "c1.large", 40)
    assert s.setup.extra_packages == ("xarray", "dask")
    assert s.ui.refresh_s == 2.0 and isinstance(s.ui.refresh_s, float)
    assert s.keymap == {"launch": "ctrl+n"}
    assert s.launch.image == ""  # untouched keys keep their defaults


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cloud: x\nlanuch: {}\n", ":2: unknown key 'lanuch' — expected one of:"),
        ("jupyter:\n  port: abc\n", ":2: jupyter.port: expected an integer, got 'abc'"),
        ("jupyter:\n  port: 70000\n", ":2: jupyter.port: expected an integer port 1-65535, got '70000'"),
        ("launch:\n  volume_size_gb: 0\n", "launch.volume_size_gb: expected an integer number of GB"),
        ("setup:\n  install_method: pip\n", ":2: setup.install_method: expected one of uv, miniforge, anaconda"),
        ("ssh:\n  use_ssh_config: maybe\n", ":2: ssh.use_ssh_config: expected true or false, got 'maybe'"),
        ("launch: [1, 2]\n", ":1: launch: expected a mapping of settings, got a list"),
        ("setup:\n  extra_packages: numpy\n", "setup.extra_packages: expected a list"),
        ("keymap:\n  launch: 3\n", ":2: keymap.launch: expected keys as text"),
        ("- a\n- b\n", ":1: expected a mapping of settings at the top level"),
        ("cloud: [unclosed\n", "malformed YAML"),
        ("jupyter:\n  ssh:\n    user: x\n", ":2: unknown key 'jupyter.ssh'"),
    ],
)
def test_bad_profiles_name_file_line_key_and_fix(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_file(path)
    message = str(info.value)
    assert str(path) in message
    assert expected in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found — create it from config/cades-tui.example.yaml"):
        load_file(tmp_path / "nope.yaml")


def test_one_source_of_defaults_for_the_app_setup_and_jupyter() -> None:
    """The workspace was ~/work in the profile but ~/workspace in setup and Jupyter: now one default, ~/workspace."""
    assert DEFAULTS.jupyter.workspace == "~/workspace"
    assert SetupSpec().workspace == JupyterSpec().workspace == DEFAULTS.jupyter.workspace
    assert SetupSpec().jupyter_port == JupyterSpec().port == DEFAULTS.jupyter.port
    assert JupyterSpec().session == DEFAULTS.jupyter.session_name
    assert JupyterSpec().logfile == paths.JUPYTER_LOGFILE == "~/.cades-tui/jupyter.log"
    assert SetupSpec().prefix == DEFAULTS.setup.prefix == "~/jupyter-env"
    assert JupyterSpec().command == "~/jupyter-env/bin/jupyter"
    assert Settings() == DEFAULTS and load_settings.__defaults__ == (None, None)


def test_views_are_built_from_the_profile(tmp_path: Path) -> None:
    s = load_file(write(tmp_path, """
setup: {install_method: miniforge, extra_packages: [xarray]}
jupyter: {app: notebook, port: 9000, workspace: /data/ws, session_name: nb-1}
"""))
    vol = VolumeSpec("vol-1", device="/dev/vdb")
    setup = SetupSpec.from_settings(s, env=(("UV_CACHE_DIR", "/c"),), volume=vol)
    assert (setup.method, setup.prefix, setup.extra_packages) == (InstallMethod.MINIFORGE, "~/miniforge3", ("xarray",))
    assert (setup.jupyter_port, setup.workspace, setup.volume) == (9000, "/data/ws", vol)
    assert setup.env == (("UV_CACHE_DIR", "/c"),)
    j = JupyterSpec.from_settings(s, command="", logfile="", port_retries=3, start_timeout=5.0)
    assert (j.kind, j.port, j.workspace, j.session) == ("notebook", 9000, "/data/ws", "nb-1")
    assert (j.command, j.logfile, j.port_retries, j.start_timeout) == (
        "~/miniforge3/bin/jupyter", paths.JUPYTER_LOGFILE, 3, 5.0)
    assert JupyterSpec.from_settings(s, command="/opt/j").command == "/opt/j"


def test_settings_are_frozen_all_the_way_down(tmp_path: Path) -> None:
    s = load_file(write(tmp_path, "keymap: {launch: ctrl+n}\n"))
    with pytest.raises(TypeError):
        s.keymap["launch"] = "x"  # type: ignore[index]
    assert Settings(keymap={"a": "b"}).keymap == {"a": "b"}
    with pytest.raises(AttributeError):
        s.jupyter.port = 1  # type: ignore[misc]


def test_cluster_section(tmp_path: Path) -> None:
    assert load_file(ROOT / "config" / "cades-tui.example.yaml").cluster == ClusterSettings()
    c = DEFAULTS.cluster
    assert (c.workers, c.flavor, c.threads_per_worker, c.memory_fraction, c.head_worker) == (2, "", 0, 0.9, True)
    assert (c.scheduler_port, c.dashboard_port, c.idle_scale_down_hours, c.idle_delete_hours) == (8786, 8787, 2, 24)
    assert c.auto_dashboard_tunnel is True
    s = load_file(write(tmp_path, "cluster:\n  workers: 0\n  memory_fraction: 1\n  flavor: c1.large\n"))
    assert (s.cluster.workers, s.cluster.memory_fraction, s.cluster.flavor) == (0, 1.0, "c1.large")


GOOD = [
    "jupyter: {session_name: jupyter_2.lab-x}",
    "ssh: {user: cades}",
    "ssh: {user: _svc.user-1}",
    "ssh: {keepalive_s: 0}",
    "setup: {env_path: /opt/envs/jupyter}",
    "setup: {env_path: ~/envs/j-1.0}",
    "jupyter: {workspace: '~'}",
    "jupyter: {workspace: work/data}",
    "jupyter: {local_port: 0}",
    "idle: {resize_after_hours: 0.5}",
    "keymap: {launch: 'ctrl+shift+n,f2', pane.flavors: f, help: '?', quit: f10}",
]


@pytest.mark.parametrize("text", GOOD)
def test_valid_values_load(tmp_path: Path, text: str) -> None:
    load_file(write(tmp_path, text + "\n"))


BAD = [
    ("jupyter:\n  session_name: my lab\n", ":2: jupyter.session_name: expected a session name of 1-64", "'my lab'"),
    ("jupyter:\n  session_name: " + "x" * 65 + "\n", ":2: jupyter.session_name: expected", "xxx"),
    ("jupyter:\n  session_name: ''\n", ":2: jupyter.session_name: expected", "''"),
    ("ssh:\n  user: 'bob smith'\n", ":2: ssh.user: expected a POSIX user name", "'bob smith'"),
    ("ssh:\n  user: -oProxyCommand=x\n", ":2: ssh.user: expected a POSIX user name", "-oProxyCommand"),
    ("ssh:\n  user: 1000\n", ":2: ssh.user: expected a POSIX user name", "'1000'"),
    ("ssh:\n  user: ''\n", ":2: ssh.user: expected", "''"),
    ("setup:\n  env_path: ~/env; rm -rf ~\n", ":2: setup.env_path: expected empty (the method's default) or", ";"),
    ("setup:\n  env_path: $HOME/env\n", ":2: setup.env_path: expected", "'$HOME/env'"),
    ("setup:\n  env_path: '~'\n", ":2: setup.env_path: expected", "not HOME or /"),
    ("setup:\n  env_path: /\n", ":2: setup.env_path: expected", "'/'"),
    ("jupyter:\n  workspace: ~/my work\n", ":2: jupyter.workspace: expected a folder like ~/workspace", "'~/my work'"),
    ("jupyter:\n  workspace: $(reboot)\n", ":2: jupyter.workspace: expected", "'$(reboot)'"),
    ("jupyter:\n  workspace: ~other/ws\n", ":2: jupyter.workspace: expected", "'~other/ws'"),
    ("jupyter:\n  workspace: ''\n", ":2: jupyter.workspace: expected", "''"),
    ("jupyter:\n  workspace: ~\n", ":2: jupyter.workspace: a bare ~ is YAML's 'nothing' — write '~' (quoted)", "~"),
    ("idle:\n  resize_after_hours: -1\n", ":2: idle.resize_after_hours: expected a positive number of hours", "'-1'"),
    ("idle:\n  stop_after_hours: 0\n", ":2: idle.stop_after_hours: expected a positive number", "'0'"),
    ("idle:\n  delete_after_days: .nan\n", ":2: idle.delete_after_days: expected a positive number of days", "nan"),
    ("ssh:\n  keepalive_s: -5\n", ":2: ssh.keepalive_s: expected seconds between keepalives", "'-5'"),
    ("ui:\n  refresh_s: 0\n", ":2: ui.refresh_s: expected seconds between refreshes", "'0'"),
    ("jupyter:\n  port: 0\n", ":2: jupyter.port: expected an integer port 1-65535", "'0'"),
    ("jupyter:\n  local_port: -1\n", ":2: jupyter.local_port: expected an integer port 1-65535, or 0", "'-1'"),
    ("jupyter:\n  local_port: 65536\n", ":2: jupyter.local_port: expected", "'65536'"),
    ("jupyter:\n  port:\n", ":2: jupyter.port: expected an integer", "''"),
    ("keymap:\n  launch: ctrl+\n", ":2: keymap.launch: expected keys as text like 'ctrl+n'", "'ctrl+'"),
    ("keymap:\n  launch: 'n,,f2'\n", ":2: keymap.launch: expected keys", "'n,,f2'"),
    ("keymap:\n  launch: ctrl+n f2\n", ":2: keymap.launch: expected keys", "'ctrl+n f2'"),
    ("keymap:\n  launch: cmd+n\n", ":2: keymap.launch: expected keys", "'cmd+n'"),
    ("keymap:\n  launch:\n", ":2: keymap.launch: expected keys", "''"),
    ("keymap:\n  'bad id': n\n", ":2: keymap: expected an action id like launch", "'bad id'"),
    ("cluster:\n  workers: -1\n", ":2: cluster.workers: expected a number of worker instances", "'-1'"),
    ("cluster:\n  workers: 2.5\n", ":2: cluster.workers: expected an integer", "'2.5'"),
    ("cluster:\n  threads_per_worker: -2\n", ":2: cluster.threads_per_worker: expected", "'-2'"),
    ("cluster:\n  memory_fraction: 0\n", ":2: cluster.memory_fraction: expected a fraction", "'0'"),
    ("cluster:\n  memory_fraction: 1.5\n", ":2: cluster.memory_fraction: expected", "'1.5'"),
    ("cluster:\n  head_worker: yes please\n", ":2: cluster.head_worker: expected true or false", "'yes please'"),
    ("cluster:\n  scheduler_port: 70000\n", ":2: cluster.scheduler_port: expected an integer port", "'70000'"),
    ("cluster:\n  dashboard_port: 0\n", ":2: cluster.dashboard_port: expected an integer port", "'0'"),
    ("cluster:\n  idle_scale_down_hours: 0\n", ":2: cluster.idle_scale_down_hours: expected a positive", "'0'"),
    ("cluster:\n  idle_delete_hours: -3\n", ":2: cluster.idle_delete_hours: expected a positive", "'-3'"),
    ("cluster:\n  scheduler_port: 9000\n  dashboard_port: 9000\n",
     ":3: cluster.dashboard_port: expected a port other than cluster.scheduler_port", "'9000'"),
    ("cluster:\n  idle_scale_down_hours: 5\n  idle_delete_hours: 4\n",
     ":3: cluster.idle_delete_hours: expected at least cluster.idle_scale_down_hours", "'4'"),
    ("cluster:\n  head_worker: false\n  workers: 0\n", ":3: cluster.workers: expected at least 1", "'0'"),
    ("cluster:\n  auto_tunnel: true\n", ":2: unknown key 'cluster.auto_tunnel' — expected one of:",
     "auto_dashboard_tunnel"),
    ("jupyter:\n  port: 8888\n  port: 8889\n", ":3: jupyter.port: given twice", "keep one"),
]


@pytest.mark.parametrize(("text", "expected", "shown"), BAD)
def test_bad_values_are_refused_at_load(tmp_path: Path, text: str, expected: str, shown: str) -> None:
    """One line: file:line, the key, what is expected (the fix) and the value found."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_file(path)
    message = str(info.value)
    assert message.startswith(str(path) + ":")
    assert expected in message and shown in message
    assert "\n" not in message


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = tmp_path / "a.yaml"
    explicit.write_text("cloud: from-flag\n")
    env = tmp_path / "b.yaml"
    env.write_text("cloud: from-env\n")
    xdg = tmp_path / "xdg"
    (xdg / "cades-tui").mkdir(parents=True)
    (xdg / "cades-tui" / "config.yaml").write_text("cloud: from-xdg\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    monkeypatch.delenv("OS_CLOUD", raising=False)
    monkeypatch.delenv("CADES_TUI_CONFIG", raising=False)
    assert load_settings().cloud == "from-xdg"
    monkeypatch.setenv("CADES_TUI_CONFIG", str(env))
    assert load_settings().cloud == "from-env"
    assert load_settings(str(explicit)).cloud == "from-flag"
    monkeypatch.setenv("OS_CLOUD", "from-os-cloud")
    assert load_settings(str(explicit)).cloud == "from-os-cloud"
    assert load_settings(str(explicit), cloud="from-cli").cloud == "from-cli"


def run_cli(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "tui", *args], capture_output=True, text=True, env=env, timeout=60)


def test_cli_bad_profile_is_one_line_exit_2_no_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "jupyter:\n  port: eighty\n")
    result = run_cli("--config", str(path), "list")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [f"cades-tui: error: {path}:2: jupyter.port: expected an integer, got 'eighty'"]


def test_cli_missing_profile_exit_2(tmp_path: Path) -> None:
    result = run_cli("list", env_extra={"CADES_TUI_CONFIG": str(tmp_path / "missing.yaml")})
    assert result.returncode == 2
    assert "file not found" in result.stderr and "Traceback" not in result.stderr


def test_cli_version_and_help() -> None:
    assert run_cli("--version").stdout.strip().startswith("cades-tui ")
    help_text = run_cli("--help").stdout
    for command in ("sandbox", "list", "flavors", "launch", "delete", "volume"):
        assert command in help_text


def test_readme_lists_every_keymap_id() -> None:
    """The example profile points to the README for the ids: that list is the app's (tests/ui checks the app)."""
    import re

    from tui.conventions import KEYMAP_DEFAULTS

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("The action ids, by screen:"):readme.index("`ui.theme` takes")]
    assert set(re.findall(r"`([a-z.]+)`", section)) == {i for ids in KEYMAP_DEFAULTS.values() for i in ids}
    assert "README's \"Keys\" section lists the ids" in (ROOT / "config" / "cades-tui.example.yaml").read_text()
