"""Profiles: lookup order, overrides, and one clear line for every kind of bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tui.core.config import ConfigError, Settings, load_file, load_settings

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
