"""The Miniforge/Anaconda path, with a stand-in installer served from a loopback HTTP server.

FAKE AT THE EDGE: this machine cannot download the real installers. `FAKE_INSTALLER` accepts the real
installer's batch options (`-b [-u] -p PREFIX`) and creates PREFIX as a plain Python venv (no conda), so
the rest of the step is real: the pipeline downloads it with curl/wget over HTTP, runs it with bash, then
installs the packages into PREFIX with PREFIX/bin/python -m pip from PyPI. To keep the suite short this
test installs one small package instead of Jupyter; the uv tests install Jupyter for real.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tui.core.guide import InstallMethod, OutputLines, SetupSpec
from tui.core.guide.steps import DetectSystem, InstallPythonEnv, WaitForSSH
from tui.core.models import StepStatus
from tui.sandbox.sshhost import SSHHost

from .conftest import Rig
from .test_pipeline import statuses

FAKE_INSTALLER = """#!/bin/sh
# FAKE Miniforge installer for tests (see tests/guide/test_conda.py).
set -e
batch=0; prefix=""
while [ $# -gt 0 ]; do
  case "$1" in
    -b) batch=1 ;;
    -u) ;;
    -p) prefix="$2"; shift ;;
    *) echo "fake installer: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$batch" = 1 ] || { echo "fake installer: only batch mode (-b)" >&2; exit 2; }
[ -n "$prefix" ] || { echo "fake installer: -p PREFIX required" >&2; exit 2; }
echo "PREFIX=$prefix"
python3 -m venv "$prefix"
echo "installation finished."
"""


@pytest.fixture
def installer_server(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """(base URL, request paths seen) of a loopback HTTP server serving the fake installer."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "Miniforge3-Linux-x86_64.sh").write_text(FAKE_INSTALLER)
    seen: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            seen.append(self.path)

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.slow
async def test_miniforge_with_fake_installer(
    rig: Rig,
    ssh_host: SSHHost,
    installer_server: tuple[str, list[str]],
    pkg_cache: tuple[tuple[str, str], ...],
) -> None:
    base, seen = installer_server
    settings = SetupSpec(
        method=InstallMethod.MINIFORGE,
        installer_url=base + "/Miniforge3-{os}-{arch}.sh",
        packages=("iniconfig",),
        env=pkg_cache,
    )
    steps = [WaitForSSH(), DetectSystem(), InstallPythonEnv()]
    result = await rig.setup(settings, steps=steps)
    assert result.ok, result.summary
    assert seen == ["/Miniforge3-Linux-x86_64.sh"]  # {os}/{arch} filled from the detected system
    prefix = ssh_host.home / "miniforge3"
    assert (prefix / "bin" / "python").exists()
    assert list((prefix / "lib").glob("python3*/site-packages/iniconfig"))
    streamed = [line for e in rig.events if isinstance(e, OutputLines) for line in e.lines]
    assert "installation finished." in streamed and any("iniconfig" in line for line in streamed)
    assert 'bash "$tmp/installer.sh" -b -p "$HOME"/miniforge3' in rig.log.read()
    # again: the check passes, nothing is downloaded
    assert (await rig.setup(settings, steps=steps)).ok
    assert statuses(rig)["python"] is StepStatus.SKIPPED
    assert seen == ["/Miniforge3-Linux-x86_64.sh"]


async def test_installer_download_failure_is_reported(rig: Rig, installer_server: tuple[str, list[str]]) -> None:
    base, _ = installer_server
    settings = SetupSpec(method="anaconda", installer_url=base + "/missing.sh")  # type: ignore[arg-type]
    result = await rig.setup(settings, steps=[WaitForSSH(), DetectSystem(), InstallPythonEnv()])
    failed = result.results[-1]
    assert failed.status is StepStatus.FAILED and "missing.sh" in failed.command
    assert any("404" in line for line in failed.output_tail), failed.output_tail
