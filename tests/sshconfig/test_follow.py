"""The one place the generated file follows the instances: the core engine (the app's polls, launch, delete),
only once the user made the file — against the sandbox over HTTP."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tui.core.cloud.base import LaunchSpec
from tui.core.cloud.openstack_cloud import OpenStackCloud
from tui.core.config import Settings
from tui.core.engine import CoreEngine


def spec(cloud: OpenStackCloud, name: str) -> LaunchSpec:
    image = max((i for i in cloud.list_images() if "24.04" in i.name), key=lambda i: i.name)
    network = next(n for n in cloud.list_networks() if not n.external)
    return LaunchSpec(name=name, image=image.id, flavor="m1.tiny", key_name="", network=network.id,
                      volume_size_gb=16)


async def test_polls_launches_and_deletes_rewrite_the_file_once_made(sandbox: Any) -> None:
    cloud = OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sandbox.clouds_yaml)
    other = OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sandbox.clouds_yaml)  # another terminal
    events: list[Any] = []
    engine = CoreEngine(Settings(cloud="sandbox", clouds_yaml=str(sandbox.clouds_yaml)), cloud, events.append)
    path = Path.home() / ".ssh" / "cades-tui" / "sandbox.config"
    tag = uuid.uuid4().hex[:6]
    first = engine.launch(spec(cloud, f"fa-{tag}"), lambda _: None)
    made: list[str] = []
    try:
        engine.poll(False, full=True)
        assert not path.exists()  # not asked for: polls and launches never write into ~/.ssh
        report = engine.sshconfig.write()
        assert report.changed and f"Host {first.name}\n" in path.read_text() and not report.installed

        second = other.launch(spec(other, f"fb-{tag}"), wait=True)  # elsewhere: the app's next poll sees it
        made.append(second.id)
        engine.poll(False)
        assert f"Host {second.name}\n" in path.read_text()
        mtime = path.stat().st_mtime_ns
        engine.poll(False, full=True)
        assert path.stat().st_mtime_ns == mtime  # nothing changed: not written again

        third = engine.launch(spec(cloud, f"fc-{tag}"), lambda _: None)
        made.append(third.id)
        assert f"Host {third.name}\n" in path.read_text()
        await engine.delete_instance(third, None, delete_volumes=True)
        made.remove(third.id)
        text = path.read_text()
        assert f"Host {third.name}\n" not in text and f"Host {second.name}\n" in text
        assert not [e for e in events if type(e).__name__ == "BackgroundFailed"]

        engine.sshconfig.uninstall()
        assert not path.exists()
        engine.poll(False, full=True)
        assert not path.exists()  # uninstalled: no longer followed
    finally:
        for iid in [*made, first.id]:
            other.delete(iid, delete_volumes=True)
        await engine.aclose()


def test_a_failed_rewrite_is_said_not_raised(sandbox: Any, tmp_path: Path) -> None:
    """A key path no ssh config can hold (a double quote): the poll goes on, the failure is emitted, the file kept."""
    from dataclasses import replace

    from tui.core.config import SSHSettings

    cloud = OpenStackCloud.from_config(cloud="sandbox", clouds_yaml=sandbox.clouds_yaml)
    inst = cloud.launch(spec(cloud, f"fq-{uuid.uuid4().hex[:6]}"), wait=True)
    try:
        events: list[Any] = []
        settings = Settings(cloud="sandbox", clouds_yaml=str(sandbox.clouds_yaml))
        engine = CoreEngine(settings, cloud, events.append)
        engine.sshconfig.write()
        before = engine.sshconfig.configs.keeper.path.read_text()
        odd = replace(settings, ssh=SSHSettings(key_path=str(tmp_path / 'my "key"')))
        engine = CoreEngine(odd, cloud, events.append)
        engine.poll(False, full=True)  # does not raise
        engine.poll(False, full=True)  # the same failure again: said once
        failed = [e for e in events if type(e).__name__ == "BackgroundFailed"]
        path = engine.sshconfig.configs.keeper.path
        assert len(failed) == 1 and str(path) in failed[0].what and "double quote" in failed[0].error
        assert engine.sshconfig.configs.keeper.path.read_text() == before
    finally:
        cloud.delete(inst.id, delete_volumes=True)
