"""`cluster create HEAD --from-image`: the head's environment frozen as an image (made now), workers launched from it
join with nothing installed — on the sandbox cloud, real sshd VMs, real dask/distributed, real TLS.

The head's environment lives in its home (`~/dask-env`: a venv whose site-packages point at the test venv's, so
dask needs no download): a worker launched from the plain Ubuntu image would have to install it; one launched from
the frozen image finds it, with the head's versions."""

from __future__ import annotations

import shlex
import site
import sys
import uuid
from pathlib import Path

import pytest

from tests._support import Events, launch
from tui.core.cluster.lifecycle import frozen_image_name
from tui.core.config import ClusterSettings, JupyterSettings, Settings, SetupSettings, SSHSettings
from tui.core.engine import CoreEngine, open_cloud
from tui.core.events import ClusterProgress
from tui.core.keys import KeyStore
from tui.core.services import Services
from tui.sandbox.sshhost import free_port

pytestmark = pytest.mark.timeout(400)

HEAD_ENV = f"""set -e
{shlex.quote(sys.executable)} -m venv --without-pip "$HOME/dask-env"
echo {shlex.quote(site.getsitepackages()[0])} > "$HOME/dask-env/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages/test-venv.pth"
printf '#!%s/dask-env/bin/python\\nimport sys\\nfrom dask.__main__ import main\\nif __name__ == "__main__":\\n    sys.exit(main())\\n' "$HOME" > "$HOME/dask-env/bin/dask"
chmod +x "$HOME/dask-env/bin/dask"
"""  # noqa: E501


@pytest.mark.slow
async def test_workers_from_the_heads_frozen_image_join_without_install(tmp_path: Path) -> None:
    from tui.sandbox import Delays, Sandbox

    sandbox = Sandbox(tmp_path / "cloud", delays=Delays.fast())
    sandbox.start()
    engine = None
    try:
        sandbox.set_quota(ram_mb=64 * 1024, cores=64, instances=20, gigabytes=1000)
        settings = Settings(cloud="sandbox", clouds_yaml=str(sandbox.clouds_yaml),
                            ssh=SSHSettings(use_ssh_config=False),
                            jupyter=JupyterSettings(port=free_port(), local_port=0),
                            setup=SetupSettings(env_path="~/dask-env"),
                            cluster=ClusterSettings(workers=1, head_worker=False, scheduler_port=free_port(),
                                                    dashboard_port=free_port(), flavor="c1.small",
                                                    auto_dashboard_tunnel=False))
        keystore = KeyStore(tmp_path / "data")
        services = Services(settings, keystore, tmp_path / "state", tmp_path / "data" / "known_hosts")
        cloud = open_cloud(settings)
        head = launch(cloud, f"head-{uuid.uuid4().hex[:4]}", keystore)
        events = Events()
        engine = CoreEngine(settings, cloud, events, services=services)
        engine.lifecycle.poll_s = 0.2
        engine.images.poll_s = 0.1
        conn = await engine.lifecycle.connect(head)
        await conn.run(HEAD_ENV, check=True)

        head_home = sandbox.ssh_host(head.id).home
        cred = head_home / ".cades-tui" / "autostop" / "credential.json"  # as `autostop --action shelve` leaves it
        cred.parent.mkdir(parents=True, exist_ok=True)
        cred.write_text('{"id": "x", "secret": "head-only"}')
        cred.chmod(0o600)

        summary = await engine.lifecycle.create(head.id, 1, from_image="", dashboard=False)
        worker = f"{head.name}-w1"
        assert [w.name for w in summary.status.workers] == [worker] and not summary.failed
        said = events.of(ClusterProgress)
        assert not [p for p in said if p.phase == "install"], [p.message for p in said]  # nothing installed
        assert any(p.instance == worker and "as on the head" in p.message for p in said)
        image = cloud.get_image(frozen_image_name(head.name))
        assert image.own and image.status == "active" and image.snapshot_ids  # volume-backed: no instance_uuid (Nova)
        assert len(image.snapshot_ids) == 1  # the head boots from a volume: its image maps a Cinder snapshot

        # The worker's disk is the head's, but not the head's secrets of the cluster: its CA key and manifest.
        w = next(i for i in cloud.list_instances() if i.name == worker)
        home = sandbox.ssh_host(w.id).home
        assert (home / "dask-env" / "bin" / "dask").read_text().startswith(f"#!{home}/dask-env/bin/python")
        assert not (home / ".cades-tui" / "dask" / "ca.key").exists()
        assert not (home / ".cades-tui" / "autostop" / "credential.json").exists()  # taken off for the snapshot
        assert cred.read_text() == '{"id": "x", "secret": "head-only"}' and cred.stat().st_mode & 0o777 == 0o600
        assert (sandbox.ssh_host(head.id).home / ".cades-tui" / "dask" / "ca.key").exists()

        # Again: the frozen image is reused, not made twice.
        mark = events.mark()
        await engine.lifecycle.scale(head.id, 2, from_image="", dashboard=False)
        assert any("workers start from image" in p.message for p in events.of(ClusterProgress, mark))
        assert [i.name for i in cloud.list_images() if i.own] == [image.name]
    finally:
        if engine is not None:
            await engine.aclose()
        sandbox.stop()

