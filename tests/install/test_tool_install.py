"""Installed as a tool, the way the README's Install section says: `uv tool install` from the clone, and from a
built wheel, into a temporary tool dir (UV_TOOL_DIR, UV_TOOL_BIN_DIR), and `pipx install` from the clone (PIPX_HOME,
PIPX_BIN_DIR) — then `cades-tui --help` and `cades-tui --demo list` run from the tool's own environment, with its
package data.

The source is copied first (pyproject.toml, README.md, tui/ and the lock as they are on disk) so that building never
writes build/ or *.egg-info into the working tree. Dependencies come from PyPI at the lock's versions
(config/requirements.lock, passed as constraints exactly as the README says; uv's cache makes a second run quick);
the tool runs on this interpreter (`--python`), so nothing but packages is downloaded. The installed tool must have
exactly the lock's versions and `cades-tui --demo list` must write nothing on stderr (a library's warning included).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tui.sandbox import procs
from tui.sandbox.sshhost import MARKER_ENV

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).with_name("uv")
LOCK = "config/requirements.lock"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not UV.exists(), reason="uv is part of the test extras"),
]


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", LOCK):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "tui", src / "tui", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return src


def _uv(args: list[str], env: dict[str, str], cwd: Path) -> str:
    result = subprocess.run([str(UV), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=480)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def _run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the installed command; never leave it running."""
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _stop_demo_vms(sandbox_dir: Path) -> None:
    """Whatever the demo's VMs left running (the demo keeps a VM's own processes, as a real cloud does)."""
    for vm in (sandbox_dir / "instances").glob("*"):
        procs.terminate_marked(f"{MARKER_ENV}={vm.resolve()}")


@pytest.mark.parametrize("source", ["clone", "wheel", "pipx", "venv"])
def test_tool_install_gives_a_working_command(tmp_path: Path, source: str) -> None:
    src = _source(tmp_path)
    tools, bin_dir, sandbox_dir = tmp_path / "tools", tmp_path / "bin", tmp_path / "demo-sandbox"
    env = {**os.environ, "UV_TOOL_DIR": str(tools), "UV_TOOL_BIN_DIR": str(bin_dir), "UV_NO_CONFIG": "1",
           "CADES_TUI_SANDBOX_DIR": str(sandbox_dir), "PIPX_HOME": str(tools), "PIPX_BIN_DIR": str(bin_dir)}
    env.pop("VIRTUAL_ENV", None)
    target = str(src)
    if source == "venv":  # a clean venv, the lock as constraints (the Quick start's way, with uv for speed)
        venv = tools / "cades-tui"
        _uv(["venv", "-q", "--python", sys.executable, str(venv)], env, tmp_path)
        _uv(["pip", "install", "-q", "--python", str(venv / "bin" / "python"), "-c", str(src / LOCK), target],
            env, tmp_path)
        bin_dir.mkdir()
        (bin_dir / "cades-tui").symlink_to(venv / "bin" / "cades-tui")
        _check_tool(tools, bin_dir, sandbox_dir, env, tmp_path)
        return
    if source == "pipx":
        result = subprocess.run([sys.executable, "-m", "pipx", "install", "--python", sys.executable,
                                 f"--pip-args=-c {src / LOCK}", target],
                                env=env, cwd=tmp_path, capture_output=True, text=True, timeout=480)
        assert result.returncode == 0, result.stdout + result.stderr
        _check_tool(tools / "venvs", bin_dir, sandbox_dir, env, tmp_path)
        return
    if source == "wheel":
        _uv(["build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(src)], env, tmp_path)
        wheel = next((tmp_path / "dist").glob("cades_tui-*.whl"))
        names = zipfile.ZipFile(wheel).namelist()
        assert "tui/ui/app.tcss" in names and "tui/py.typed" in names  # the package data travels in the wheel
        target = str(wheel)
    _uv(["tool", "install", "--python", sys.executable, "-c", str(src / LOCK), target], env, tmp_path)
    _check_tool(tools, bin_dir, sandbox_dir, env, tmp_path)


def _check_tool(tools: Path, bin_dir: Path, sandbox_dir: Path, env: dict[str, str], tmp_path: Path) -> None:
    """The installed command answers --help and --demo list, from the tool's own environment with its data."""
    command = bin_dir / ("cades-tui.exe" if sys.platform == "win32" else "cades-tui")
    assert command.is_file() and os.access(command, os.X_OK)
    try:
        helped = _run([str(command), "--help"], env, tmp_path)
        assert helped.returncode == 0, helped.stderr
        assert helped.stdout.startswith("usage: cades-tui") and "--demo" in helped.stdout
        # the command runs from the tool's environment, not from this checkout or this venv
        tool_python = next(p for p in (tools / "cades-tui").glob("bin/python*") if p.is_file() or p.is_symlink())
        probe = _run([str(tool_python), "-c", "import tui, importlib.resources as r; print(tui.__file__); "
                      "print(r.files('tui.ui').joinpath('app.tcss').is_file())"], env, tmp_path)
        where, css = probe.stdout.split()
        assert Path(where).is_relative_to(tools) and css == "True", probe.stdout + probe.stderr
        _assert_locked_versions(tool_python, env, tmp_path)
        listed = _run([str(command), "--demo", "list"], env, tmp_path)
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert listed.stderr == ""  # no library warning (cryptography's "DSA is deprecated", ...) on the terminal
        assert "analytics-1" in listed.stdout  # the demo's ready-made instance, from its embedded cloud
        assert (sandbox_dir / "clouds.yaml").is_file()
    finally:
        _stop_demo_vms(sandbox_dir)


def locked_versions() -> dict[str, str]:
    """The lock's pins that apply on this machine: {normalized name: version}."""
    from packaging.markers import Marker

    pins = {}
    for line in (ROOT / LOCK).read_text().splitlines():
        if not line or line[0] in "# ":
            continue
        req, _, marker = line.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate():
            continue
        name, _, version = req.strip().partition("==")
        pins[_normalize(name)] = version
    return pins


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _assert_locked_versions(tool_python: Path, env: dict[str, str], cwd: Path) -> None:
    """Every package of the tool's environment is at the lock's version: the user gets what CI tested."""
    script = "import importlib.metadata as m\nfor d in m.distributions(): print(d.metadata['Name'], d.version)"
    listed = _run([str(tool_python), "-c", script], env, cwd)
    assert listed.returncode == 0, listed.stderr
    pins = locked_versions()
    installed = {_normalize(n): v for n, v in (line.split() for line in listed.stdout.splitlines())}
    installed.pop("cades-tui", None)
    for tool_only in ("pip", "setuptools", "wheel"):  # pipx's venv has its own pip
        installed.pop(tool_only, None)
    off = {n: (v, pins.get(n)) for n, v in installed.items() if pins.get(n) != v}
    assert not off, f"installed vs lock: {off}"
