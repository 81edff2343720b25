"""Setup on an instance launched from a frozen image: every check finds what the image has — the Python
environment, Jupyter's config, the workspace — and skips it: no install runs (sandbox servers, real sshd, uv)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests._support import running_sandbox
from tests.sandbox.conftest import connect, wait_for
from tui.core.guide import SetupRunner, SetupSpec, SSHExecutor, StepFinished
from tui.core.models import StepStatus
from tui.core.remote.commands import CommandLog
from tui.core.remote.connection import ConnectionPool, SSHTarget

INSTALLS = ("pip install", "uv venv", "-m venv")


async def _setup(sb: Any, conn: Any, server_id: str, settings: SetupSpec, key: Path,
                 tmp: Path) -> tuple[dict[str, Any], str, float]:
    """(step -> status, the command log, seconds) of a setup run on the sandbox server (at its private address)."""
    host = wait_for(lambda: sb.ssh_host(server_id), what="the server's SSH host")
    address = conn.compute.get_server(server_id).addresses["sandbox-net"][0]["addr"]
    known = tmp / f"known-{server_id}"
    log = CommandLog.for_instance(tmp / "state", server_id)
    pool = ConnectionPool()
    events: list[Any] = []
    known.write_text(host.known_hosts_line() + "\n")
    target = SSHTarget(address, host.port, host.user, key, known)
    t0 = time.monotonic()
    try:
        result = await SetupRunner(settings, SSHExecutor(pool, server_id, target, log, settings.env),
                                   events.append).run()
    finally:
        await pool.close_all()
    assert result.ok, result.summary
    return ({e.result.step: e.result.status for e in events if isinstance(e, StepFinished)}, log.read(),
            time.monotonic() - t0)


@pytest.mark.slow
async def test_a_clone_skips_the_install(tmp_path: Path, client_key_file: tuple[Path, str],
                                         pkg_cache: tuple[tuple[str, str], ...],
                                         uv_on_path: tuple[tuple[str, str], ...]) -> None:
    settings = SetupSpec(env=pkg_cache + uv_on_path, packages=("iniconfig",), jupyter_port=8899,
                         ssh_wait_seconds=30)
    with running_sandbox(tmp_path / "cloud") as sb:
        conn = connect(sb)
        conn.compute.create_keypair(name="k", public_key=client_key_file[1])
        src = conn.create_server("src", image="Ubuntu 24.04", flavor="m1.small", network="sandbox-net",
                                 key_name="k", boot_from_volume=True, volume_size=16, wait=True, auto_ip=False)
        first, first_log, first_s = await _setup(sb, conn, src.id, settings, client_key_file[0], tmp_path)
        assert first["python"] is StepStatus.DONE and any(m in first_log for m in INSTALLS)

        image = conn.compute.create_server_image(src.id, "src-env", wait=True, timeout=60)
        (snap_id,) = [s.id for s in conn.block_storage.snapshots()]  # src is volume-backed: one Cinder snapshot
        wait_for(lambda: conn.block_storage.get_snapshot(snap_id).status == "available", timeout=60,
                 what="the volume snapshot")  # as `image create --wait` does
        clone = conn.create_server("clone", image=image.id, flavor="m1.small", network="sandbox-net", key_name="k",
                                   boot_from_volume=True, volume_size=16, wait=True, timeout=60, auto_ip=False)
        again, clone_log, clone_s = await _setup(sb, conn, clone.id, settings, client_key_file[0], tmp_path)
        print(f"setup: fresh {first_s:.1f} s, clone {clone_s:.1f} s")
        assert again == {"ssh": StepStatus.DONE, "detect": StepStatus.DONE, "screen": StepStatus.SKIPPED,
                         "python": StepStatus.SKIPPED, "jupyter-config": StepStatus.SKIPPED,
                         "workspace": StepStatus.SKIPPED, "volume": StepStatus.SKIPPED,
                         "autostop": StepStatus.SKIPPED}
        assert not any(m in clone_log for m in INSTALLS), clone_log
        clone_home = sb.ssh_host(clone.id).home
        assert (clone_home / "jupyter-env" / "bin" / "python").exists()
        assert str(clone_home) in (clone_home / ".jupyter" / "jupyter_server_config.json").read_text()
        conn.close()
