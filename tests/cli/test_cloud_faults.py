"""The cloud facade under the sandbox's fault knobs: every failure is one CloudError with the cloud's words."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tui.core.cloud.base import CloudError, CloudUnreachable, QuotaExceeded, RateLimited
from tui.core.cloud.openstack_cloud import OpenStackCloud


@pytest.fixture
def cloud(sandbox) -> Iterator[OpenStackCloud]:  # type: ignore[no-untyped-def]
    yield OpenStackCloud.from_config("sandbox", sandbox.clouds_yaml, api_timeout=1.0)
    sandbox.faults.reset()


def test_slow_api_times_out_cleanly(cloud: OpenStackCloud, sandbox) -> None:  # type: ignore[no-untyped-def]
    sandbox.faults.latency_s = 3.0
    with pytest.raises(CloudUnreachable, match="did not answer in time"):
        cloud.list_flavors()
    sandbox.faults.latency_s = 0.0
    assert cloud.list_flavors()  # and it works again


def test_server_errors_and_rate_limits(cloud: OpenStackCloud, sandbox) -> None:  # type: ignore[no-untyped-def]
    sandbox.faults.error_rate = 1.0
    with pytest.raises(CloudError, match=r"internal error \(5\d\d\)"):
        cloud.list_instances()
    sandbox.faults.error_rate = 0.0
    sandbox.faults.rate_limit_rate = 1.0
    with pytest.raises(RateLimited, match="429"):
        cloud.get_quota()
    sandbox.faults.rate_limit_rate = 0.0
    assert cloud.get_quota().cores_limit == 16


def test_quota_exceeded_says_novas_numbers(cloud: OpenStackCloud, sandbox) -> None:  # type: ignore[no-untyped-def]
    from tui.core.cloud.base import LaunchSpec

    sandbox.faults.set_quota(instances=0)
    net = next(n for n in cloud.list_networks() if not n.external)
    image = next(i for i in cloud.list_images() if "Ubuntu" in i.name)
    spec = LaunchSpec(name="over", image=image.id, flavor="m1.tiny", key_name="", network=net.id)
    # Nova: "Quota exceeded for instances: Requested 1, but already used 0 of 0 instances", said in our words
    with pytest.raises(QuotaExceeded, match="over the quota — instances: this needs 1 more, 0 of 0 in use"):
        cloud.launch(spec)
    assert all(i.name != "over" for i in cloud.list_instances())


def test_instance_going_to_error_is_reported(cloud: OpenStackCloud, sandbox) -> None:  # type: ignore[no-untyped-def]
    from tui.core.cloud.base import LaunchSpec

    sandbox.faults.fail_next_create = True
    net = next(n for n in cloud.list_networks() if not n.external)
    image = next(i for i in cloud.list_images() if "Ubuntu" in i.name)
    spec = LaunchSpec(name="doomed", image=image.id, flavor="m1.tiny", key_name="", network=net.id)
    with pytest.raises(CloudError, match="went to ERROR"):
        cloud.launch(spec)
    assert cloud.get_instance("doomed").status == "ERROR"
    cloud.delete("doomed", delete_volumes=True)


def test_launch_imports_the_users_public_key(cloud: OpenStackCloud, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The wizard's "Import ~/.ssh/….pub" choice: imported once as a key pair, its private key remembered by path
    (never read or copied)."""
    import asyncssh

    from tui.conventions import IMPORT_KEY_PREFIX
    from tui.core.cloud.base import LaunchSpec
    from tui.core.keys import KeyStore
    from tui.core.paths import public_key_files
    from tui.core.services import launch_instance

    key = asyncssh.generate_private_key("ssh-ed25519")
    private = tmp_path / "id_ed25519"
    key.write_private_key(str(private))
    (tmp_path / "id_ed25519.pub").write_text(key.export_public_key().decode())
    assert public_key_files(tmp_path) == [tmp_path / "id_ed25519.pub"]
    net = next(n for n in cloud.list_networks() if not n.external)
    image = next(i for i in cloud.list_images() if "Ubuntu" in i.name)
    spec = LaunchSpec(name="own-key", image=image.id, flavor="m1.tiny", network=net.id,
                      key_name=IMPORT_KEY_PREFIX + str(tmp_path / "id_ed25519.pub"))
    said: list[str] = []
    inst = launch_instance(cloud, spec, said.append)
    try:
        assert inst.key_name.startswith("id_ed25519-")
        assert any("Importing" in s for s in said)
        assert KeyStore().key_for(inst.id) == private
        pairs = {k.name: k for k in cloud.list_keypairs()}
        assert pairs[inst.key_name].public_key.split()[1] == key.export_public_key().decode().split()[1]
    finally:
        cloud.delete(inst.id, delete_volumes=True)


def test_a_cloud_not_in_clouds_yaml_is_bad_input_naming_the_file_and_its_entries(sandbox, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """exit code 2, one line: the file, the entries it has, the fix — and without any clouds.yaml, where it was
    looked for and the sandbox as a way to try."""
    import os
    import subprocess
    import sys

    env = os.environ | {"XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
                        "XDG_DATA_HOME": str(tmp_path / "data"), "OS_CLIENT_CONFIG_FILE": str(sandbox.clouds_yaml)}
    env.pop("OS_CLOUD", None)
    run = subprocess.run([sys.executable, "-m", "tui", "--cloud", "nope", "list"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    [line] = run.stderr.strip().splitlines()
    assert f"cloud 'nope' is not in {sandbox.clouds_yaml}" in line and "sandbox" in line and "--cloud" in line
    assert "Traceback" not in run.stderr

    env.pop("OS_CLIENT_CONFIG_FILE")
    run = subprocess.run([sys.executable, "-m", "tui", "--cloud", "nope", "list"], env=env | {"HOME": str(tmp_path)},
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    if any(os.path.exists(p) for p in ("/etc/openstack/clouds.yaml",)):
        pytest.skip("this machine has a system clouds.yaml")
    assert run.returncode == 2, run.stderr
    [line] = run.stderr.strip().splitlines()
    assert "no clouds.yaml found" in line and "cades-tui --demo" in line
    # where openstacksdk really looked (HOME is tmp_path, shown as ~): here, and the user's config folder, which
    # follows XDG_CONFIG_HOME
    assert "looked in ~/clouds.yaml, ~/config/openstack/clouds.yaml, ~/.config/openstack/clouds.yaml" in line
