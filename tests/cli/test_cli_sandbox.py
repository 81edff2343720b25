"""Every headless command against the real sandbox cloud (openstacksdk over HTTP), asserting the cloud's state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tui.__main__ import main
from tui.core.keys import KeyStore


@pytest.fixture
def cli(sandbox: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(sandbox.clouds_yaml))  # type: ignore[attr-defined]
    monkeypatch.setenv("OS_CLOUD", "sandbox")

    def run(*args: str, expect: int = 0) -> str:
        code = main(list(args))
        out, errout = capsys.readouterr()
        assert code == expect, f"exit {code} != {expect}\nstdout: {out}\nstderr: {errout}"
        return out if expect == 0 else errout

    return run


def jrun(cli, *args: str):  # type: ignore[no-untyped-def]
    return json.loads(cli(*args, "--json"))


def test_read_only_commands(cli) -> None:  # type: ignore[no-untyped-def]
    flavors = jrun(cli, "flavors")
    names = {f["name"] for f in flavors}
    assert {"m1.small", "c1.small"} <= names
    assert any(not f["fits"] for f in flavors), "some flavor must exceed the guide's 8 GB / 16 core quota"
    big = next(f for f in flavors if not f["fits"])
    assert big["misfit"] and "left" in big["misfit"][0]
    assert {f["family"] for f in flavors} >= {"m1", "c1"}
    quota = jrun(cli, "quota")
    assert quota["ram_mb_limit"] == 8192 and quota["cores_limit"] == 16
    images = jrun(cli, "images")
    assert any("Ubuntu" in i["name"] for i in images)
    assert "RESOURCE" in cli("quota") and "GOOD FOR" in cli("flavors")


def test_instance_lifecycle(cli, sandbox) -> None:  # type: ignore[no-untyped-def]
    inst = jrun(cli, "launch", "cli-vm", "--wait")
    assert inst["status"] == "ACTIVE" and inst["ip"].startswith("127.") and inst["ssh_port"] > 0  # a loopback VM
    assert inst["flavor_name"] == "m1.tiny"  # the smallest m1 that fits
    assert inst["key_name"].startswith("cades-tui-")  # the app's own key pair, imported once
    assert KeyStore().key_for(inst["id"]) == KeyStore().private_path("cades-tui")
    assert oct(KeyStore().private_path("cades-tui").stat().st_mode & 0o777) == "0o600"
    assert any(i["name"] == "cli-vm" for i in jrun(cli, "list"))
    assert "cli-vm" in cli("list")

    shown = jrun(cli, "show", "cli-vm")
    assert len(shown["volume_ids"]) == 1  # the 16 GB boot volume
    boot_volume = shown["volume_ids"][0]
    assert any(v["id"] == boot_volume and v["size_gb"] == 16 for v in jrun(cli, "volume", "list"))

    assert "--confirm" in cli("resize", "cli-vm", "c1.small")
    assert jrun(cli, "show", "cli-vm")["status"] == "VERIFY_RESIZE"
    assert "confirmed" in cli("resize", "cli-vm", "--confirm")
    after = jrun(cli, "show", "cli-vm")
    assert (after["status"], after["flavor_name"]) == ("ACTIVE", "c1.small")

    assert "SHUTOFF" in cli("stop", "cli-vm")
    assert jrun(cli, "show", "cli-vm")["status"] == "SHUTOFF"
    assert "ACTIVE" in cli("start", "cli-vm")
    assert "ACTIVE" in cli("reboot", "cli-vm")
    assert "-----BEGIN SSH HOST KEY FINGERPRINTS-----" in cli("console", "cli-vm")

    assert "Created data1 (2 GB, in-use" in cli("volume", "create", "data1", "--size", "2", "--attach", "cli-vm")
    attached = next(v for v in jrun(cli, "volume", "list") if v["name"] == "data1")
    assert attached["attached_to"] == [inst["id"]]
    assert "Detached data1" in cli("volume", "detach", "data1")
    assert "Deleted volume data1" in cli("volume", "delete", "data1", "--yes")
    assert all(v["name"] != "data1" for v in jrun(cli, "volume", "list"))

    # no terminal to confirm on: refused, nothing deleted
    err = cli("delete", "cli-vm", expect=2)
    assert "pass --yes" in err
    assert any(i["name"] == "cli-vm" for i in jrun(cli, "list"))
    assert "volumes kept" in cli("delete", "cli-vm", "--yes")
    assert all(i["name"] != "cli-vm" for i in jrun(cli, "list"))
    kept = [v for v in jrun(cli, "volume", "list") if v["id"] == boot_volume]
    assert kept and kept[0]["status"] == "available", "the boot volume (the user's data) is kept by default"
    cli("volume", "delete", boot_volume, "--yes")


def test_delete_with_volumes(cli) -> None:  # type: ignore[no-untyped-def]
    inst = jrun(cli, "launch", "cli-vm2", "--wait", "--volume-size", "20")
    boot = inst["volume_ids"][0] if inst["volume_ids"] else jrun(cli, "show", "cli-vm2")["volume_ids"][0]
    assert "volumes deleted" in cli("delete", "cli-vm2", "--yes", "--delete-volumes")
    assert all(v["id"] != boot for v in jrun(cli, "volume", "list"))


def test_bad_input_refused_before_any_api_call(cli) -> None:  # type: ignore[no-untyped-def]
    assert "not allowed" in cli("launch", "my vm; rm -rf ~", expect=2)
    assert "too small" in cli("launch", "okname", "--volume-size", "2", expect=2)
    assert "does not fit" in cli("launch", "toobig", "--flavor", "m1.xlarge", expect=1)
    assert "not found" in cli("launch", "nope", "--flavor", "m9.huge", expect=1)
    assert "not found" in cli("show", "no-such-vm", expect=1)
    assert all(i["name"] not in ("okname", "toobig", "nope") for i in jrun(cli, "list"))
    # resize FLAVOR --confirm: the usage has no such form; refused before any API call, saying the two steps
    err = cli("resize", "no-such-vm", "c1.small", "--confirm", expect=2)
    assert "takes no FLAVOR" in err and "cades-tui resize no-such-vm c1.small" in err


def test_not_found_is_exit_1_everywhere_and_nothing_is_left_behind(cli) -> None:  # type: ignore[no-untyped-def]
    """The README's rule: 1 when the cloud has no such thing (instance, volume, image, flavor, key pair)."""
    assert "not found" in cli("volume", "create", "orphan-vol", "--size", "1", "--attach", "ghost-vm", expect=1)
    assert all(v["name"] != "orphan-vol" for v in jrun(cli, "volume", "list"))  # checked before creating
    assert "volume 'ghost-vol' not found" in cli("volume", "delete", "ghost-vol", "--yes", expect=1)
    assert "key pair 'ghost-key' not found" in cli("launch", "okname", "--key", "ghost-key", expect=1)
    assert "not found" in cli("launch", "okname", "--image", "Ghost OS", expect=1)
    assert "not found" in cli("stop", "ghost-vm", expect=1)


def test_error_lines_carry_no_html(capsys: pytest.CaptureFixture[str]) -> None:
    from tui.cli.common import err

    err("reading instance 'x': The resource could not be found.<br /><br />\n\n — see `cades-tui list`")
    assert capsys.readouterr().err == ("cades-tui: error: reading instance 'x': The resource could not be found. "
                                       "— see `cades-tui list`\n")


def test_malformed_clouds_yaml_is_named_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "clouds.yaml"
    bad.write_text("clouds:\n  mycloud:\n    auth: {auth_url: http://127.0.0.1:1/v3\n    region_name: x\n")
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(bad), "OS_CLOUD": "mycloud"}
    r = subprocess.run([sys.executable, "-m", "tui", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert f"{bad}:" in r.stderr and "not valid YAML" in r.stderr and "not found" not in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_keypairs(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert "mode 600" in cli("keypair", "generate", "mykey")
    assert oct(KeyStore().private_path("mykey").stat().st_mode & 0o777) == "0o600"
    pub = tmp_path / "id_test.pub"
    pub.write_text(KeyStore().public_key("mykey").replace("mykey", "other") + "\n")
    assert "Imported key pair id_test" in cli("keypair", "import", str(pub))
    names = {k["name"] for k in jrun(cli, "keypair", "list")}
    assert {"mykey", "id_test"} <= names
    private = tmp_path / "id_bad.pub"
    private.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n")
    assert "never the private key" in cli("keypair", "import", str(private), expect=2)
    out = cli("keypair", "list")
    assert "PRIVATE KEY" not in out or "PRIVATE KEY HERE" in out


def test_cloud_errors_are_one_line_not_tracebacks(sandbox_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "clouds.yaml"
    text = Path(sandbox_env["OS_CLIENT_CONFIG_FILE"]).read_text()
    import yaml

    data = yaml.safe_load(text)
    data["clouds"]["sandbox"]["auth"]["password"] = "wrong"
    bad.write_text(yaml.safe_dump(data))
    env = {**sandbox_env, "OS_CLIENT_CONFIG_FILE": str(bad)}
    r = subprocess.run([sys.executable, "-m", "tui", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "refused the credentials (401)" in r.stderr
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(bad), "OS_CLOUD": "nosuchcloud"}
    r = subprocess.run([sys.executable, "-m", "tui", "list"], env=env, capture_output=True, text=True, timeout=60)
    # a cloud not in clouds.yaml is bad input, refused before asking any cloud: exit 2, the file and its entries
    assert r.returncode == 2 and "Traceback" not in r.stderr and "nosuchcloud" in r.stderr
    assert f"is not in {bad}" in r.stderr and "sandbox" in r.stderr


def test_unreachable_cloud_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(f"""clouds:
  down:
    auth: {{auth_url: "http://127.0.0.1:{port}/v3", username: u, password: p, project_name: x,
           user_domain_name: Default, project_domain_name: Default}}
    identity_api_version: 3
""")
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(clouds), "OS_CLOUD": "down"}
    r = subprocess.run([sys.executable, "-m", "tui", "list"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "cannot reach" in r.stderr or "auth_url" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_demo_list_in_a_fresh_home_writes_nothing_on_stderr(tmp_path: Path) -> None:
    """A library's warning (cryptography's "DSA is deprecated" when asyncssh loads, keystoneauth's, ...) goes to the
    app log, never onto the user's terminal: `--demo list` from a fresh home prints its table and nothing else."""
    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "c"), "XDG_DATA_HOME": str(home / "d"),
           "XDG_STATE_HOME": str(home / "s"), "PYTHONWARNINGS": "default"}  # every warning, once per place
    for var in ("OS_CLOUD", "OS_CLIENT_CONFIG_FILE", "CADES_TUI_CONFIG", "CADES_TUI_SANDBOX_DIR"):
        env.pop(var, None)
    proc = subprocess.Popen([sys.executable, "-m", "tui", "--demo", "list"], env=env, cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        out, errout = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        from tui.sandbox import procs
        from tui.sandbox.sshhost import MARKER_ENV

        for vm in (home / "s" / "cades-tui" / "sandbox" / "instances").glob("*"):
            procs.terminate_marked(f"{MARKER_ENV}={vm.resolve()}")
    assert proc.returncode == 0 and "analytics-1" in out, out + errout
    assert errout == ""
def test_launch_without_wait_gets_its_floating_ip_once_active(cli, sandbox) -> None:  # type: ignore[no-untyped-def]
    """`launch NAME` without --wait returns in BUILD (Nova has no port to bind a floating IP to yet); the next
    listing that sees it ACTIVE attaches the IP — once, however many processes list it at the same time."""
    from tests.sandbox.conftest import wait_for
    from tui.core.cloud.openstack_cloud import OpenStackCloud
    from tui.core.cloud.openstack_reads import OpenStackReads

    inst = jrun(cli, "launch", "nowait-vm")
    try:
        assert inst["status"] == "BUILD"
        wait_for(lambda: sandbox.server_state("nowait-vm")["status"] == "ACTIVE", what="nowait-vm ACTIVE")
        first = OpenStackCloud.from_config("sandbox", sandbox.clouds_yaml)
        second = OpenStackCloud.from_config("sandbox", sandbox.clouds_yaml)
        stale = [i for i in OpenStackReads.list_instances(second) if i.name == "nowait-vm"]  # read before the claim
        assert stale and not stale[0].public_ip
        (listed,) = [i for i in first.list_instances() if i.name == "nowait-vm"]
        assert listed.public_ip, listed.addresses
        (again,) = second.attach_pending_floating_ips(stale)  # the racing process finds the claim taken
        assert again is stale[0]
        port = sandbox.server_state("nowait-vm")["port_id"]
        bound = [f for f in sandbox.state.table("floatingips").values() if f["port_id"] == port]
        assert len(bound) == 1
        shown = jrun(cli, "show", "nowait-vm")
        assert shown["ip"] == listed.public_ip
    finally:
        cli("delete", "nowait-vm", "--yes", "--delete-volumes")


def test_status_reads_load_and_memory_of_a_vm_before_setup(cli) -> None:  # type: ignore[no-untyped-def]
    """`status --json` on a VM that answers SSH but never ran setup or Jupyter: its load and memory (a quiet login,
    its host key pinned from the console log), not null."""
    inst = jrun(cli, "launch", "load-vm", "--wait")
    try:
        row = next(r for r in jrun(cli, "status") if r["id"] == inst["id"])
        assert row["jupyter"] == "-"
        assert isinstance(row["load1"], float) and row["load1"] >= 0, row
        assert isinstance(row["mem_used_pct"], float) and 0 < row["mem_used_pct"] <= 100, row
    finally:
        cli("delete", "load-vm", "--yes", "--delete-volumes")


def test_a_floating_ip_that_cannot_be_attached_leaves_the_listing_working(cli, sandbox) -> None:  # type: ignore[no-untyped-def]
    """The cloud refuses the owed floating IP (say, none left): the listing still answers, and the mark goes back
    so that a later listing tries again."""
    from tests.sandbox.conftest import wait_for
    from tui.core.cloud.base import QuotaExceeded
    from tui.core.cloud.openstack_cloud import OpenStackCloud
    from tui.core.cloud.openstack_servers import FLOATING_IP_PENDING

    inst = jrun(cli, "launch", "nofip-vm")
    try:
        wait_for(lambda: sandbox.server_state("nofip-vm")["status"] == "ACTIVE", what="nofip-vm ACTIVE")
        cloud = OpenStackCloud.from_config("sandbox", sandbox.clouds_yaml)

        def refused(_server_id: str, _say: object) -> bool:  # a named fake: the cloud's refusal
            raise QuotaExceeded("Quota exceeded for resources: ['floatingip']")

        cloud._add_floating_ip = refused  # type: ignore[method-assign]
        (listed,) = [i for i in cloud.list_instances() if i.id == inst["id"]]
        assert not listed.public_ip
        assert FLOATING_IP_PENDING in sandbox.server_state("nofip-vm")["metadata"]  # owed still
        (later,) = [i for i in OpenStackCloud.from_config("sandbox", sandbox.clouds_yaml).list_instances()
                    if i.id == inst["id"]]
        assert later.public_ip
    finally:
        cli("delete", "nofip-vm", "--yes", "--delete-volumes")


@dataclass(frozen=True, slots=True)
class BootCount:
    """A test-only per-instance signal (the README's "How to add a remote signal", step 1)."""

    instance_id: str
    boots: int


def test_status_json_prints_a_new_signal_without_touching_the_cli(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A signal listed in `events.SIGNALS` (step 1) and emitted by the core's refresh (step 2) appears in
    `status --json` as its own field: the CLI is not told about it."""
    from tui.core import events
    from tui.core.manager import RemoteManager

    monkeypatch.setattr(events, "SIGNALS", (*events.SIGNALS, BootCount))
    read = RemoteManager.refresh

    async def refresh(self: RemoteManager, ctx) -> None:  # type: ignore[no-untyped-def]
        self.emit(BootCount(ctx.instance.id, 7))  # as a reader listed in RemoteManager.refresh does
        await read(self, ctx)

    monkeypatch.setattr(RemoteManager, "refresh", refresh)
    inst = jrun(cli, "launch", "signal-vm", "--wait")
    try:
        row = next(r for r in jrun(cli, "status") if r["id"] == inst["id"])
        assert row["boots"] == 7, row
        assert isinstance(row["load1"], float), row  # the signals already there still come
    finally:
        cli("delete", "signal-vm", "--yes", "--delete-volumes")
