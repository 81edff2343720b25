"""Installed as a tool, the way the README's Install section says: `uv tool install` from the clone, and from a
built wheel, into a temporary tool dir (UV_TOOL_DIR, UV_TOOL_BIN_DIR), and `pipx install` from the clone (PIPX_HOME,
PIPX_BIN_DIR) — then `cades-tui --help` and `cades-tui --demo list` run from the tool's own environment, with its
package data.

The source is copied first (pyproject.toml, README.md and tui/ as they are on disk) so that building never writes
build/ or *.egg-info into the working tree. Dependencies come from PyPI (uv's cache makes a second run quick); the
tool runs on this interpreter (`--python`), so nothing but packages is downloaded.
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

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not UV.exists(), reason="uv is part of the test extras"),
]


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
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


@pytest.mark.parametrize("source", ["clone", "wheel", "pipx"])
def test_tool_install_gives_a_working_command(tmp_path: Path, source: str) -> None:
    src = _source(tmp_path)
    tools, bin_dir, sandbox_dir = tmp_path / "tools", tmp_path / "bin", tmp_path / "demo-sandbox"
    env = {**os.environ, "UV_TOOL_DIR": str(tools), "UV_TOOL_BIN_DIR": str(bin_dir), "UV_NO_CONFIG": "1",
           "CADES_TUI_SANDBOX_DIR": str(sandbox_dir), "PIPX_HOME": str(tools), "PIPX_BIN_DIR": str(bin_dir)}
    env.pop("VIRTUAL_ENV", None)
    target = str(src)
    if source == "pipx":
        result = subprocess.run([sys.executable, "-m", "pipx", "install", "--python", sys.executable, target],
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
    _uv(["tool", "install", "--python", sys.executable, target], env, tmp_path)
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
        listed = _run([str(command), "--demo", "list"], env, tmp_path)
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert "analytics-1" in listed.stdout  # the demo's ready-made instance, from its embedded cloud
        assert (sandbox_dir / "clouds.yaml").is_file()
    finally:
        _stop_demo_vms(sandbox_dir)
