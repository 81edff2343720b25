"""Unmodified python-openstackclient against the sandbox.

Each `openstack` process costs 1.5-3 s of start-up, so independent commands go through one process in
openstackclient's own interactive mode (commands read from stdin); commands that need the cloud to move
between them run one process each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox.conftest import wait_for
from tui.sandbox import Sandbox

OPENSTACK = Path(sys.executable).with_name("openstack")
NOTICES = ("The root disk size in flavor will not be applied",)  # printed by `server resize` for BFV servers


def osc(sb: Sandbox, *lines: str, check: bool = True) -> tuple[list[Any], str, str]:
    """Run `openstack` commands (one per line, in one process): (JSON documents, trailing text, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_CLIENT_CONFIG_FILE=str(sb.clouds_yaml), OS_CLOUD="sandbox")
    if len(lines) == 1:
        proc = subprocess.run([str(OPENSTACK), *_split(lines[0])], env=env, capture_output=True, text=True, timeout=120)
    else:
        proc = subprocess.run(
            [str(OPENSTACK)], input="\n".join(lines) + "\n", env=env, capture_output=True, text=True, timeout=120
        )
    # Interactive mode exits 1 at end of input: judge batches by what they print on stderr.
    problems = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith(NOTICES)]
    if check and ((len(lines) == 1 and proc.returncode != 0) or problems):
        raise AssertionError(f"{lines} failed ({proc.returncode}): {proc.stderr}")
    docs, rest = _json_stream(proc.stdout)
    return docs, rest, proc.stderr


def _split(line: str) -> list[str]:
    import shlex

    return shlex.split(line)


def _json_stream(text: str) -> tuple[list[Any], str]:
    decoder = json.JSONDecoder()
    docs, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text) or text[pos] not in "[{":
            return docs, text[pos:]
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)


def state(sb: Sandbox) -> dict[str, Any]:
    return sb.server_state("cli-vm")


@pytest.mark.skipif(not OPENSTACK.exists(), reason="python-openstackclient is not installed in this venv")
def test_openstack_cli_walkthrough(sandbox: Sandbox) -> None:
    (flavors, images, limits), key, _ = osc(
        sandbox, "flavor list -f json", "image list -f json", "limits show --absolute -f json", "keypair create cli-key"
    )
    flavors = {f["Name"]: f for f in flavors}
    assert flavors["m1.small"]["RAM"] == 4096 and flavors["c1.xlarge"]["VCPUs"] == 16
    image_ids = {i["Name"]: i["ID"] for i in images}
    assert {"Ubuntu 22.04", "Ubuntu 24.04"} <= set(image_ids)
    limits = {row["Name"]: row["Value"] for row in limits}
    assert (limits["max_total_ram_size"], limits["max_total_cores"]) == (8192, 16)
    assert key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")

    (server,), _, _ = osc(
        sandbox,
        "server create --boot-from-volume 16 --image 'Ubuntu 24.04' --flavor m1.tiny "
        "--key-name cli-key --network sandbox-net --wait cli-vm -f json",
    )
    assert server["status"] == "ACTIVE" and server["image"] == "N/A (booted from volume)"
    # No floating IP unless asked for (a real cloud's way): give it one, as `openstack` users do.
    (fip,), _, _ = osc(sandbox, "floating ip create public -f json")
    osc(sandbox, f"server add floating ip cli-vm {fip['id']}")

    (rows, shown, volume), _, _ = osc(
        sandbox,
        "server list -f json",
        "server show cli-vm -f json",
        "volume create --size 2 cli-data -f json",
        "server resize --flavor m1.small cli-vm",
    )
    (row,) = rows
    assert row["Name"] == "cli-vm" and row["Networks"]["sandbox-net"][1] == "127.0.0.1"
    assert shown["properties"]["sandbox_ssh_port"] == str(sandbox.ssh_host(server["id"]).port)
    assert volume["size"] == 2
    wait_for(lambda: state(sandbox)["status"] == "VERIFY_RESIZE", what="VERIFY_RESIZE")

    osc(sandbox, "server resize confirm cli-vm", "server stop cli-vm")
    assert state(sandbox)["flavor_id"] == flavors["m1.small"]["ID"]
    wait_for(lambda: state(sandbox)["status"] == "SHUTOFF", what="SHUTOFF")
    assert not sandbox.ssh_host(server["id"]).running

    osc(sandbox, "server start cli-vm")
    wait_for(lambda: state(sandbox)["status"] == "ACTIVE", what="ACTIVE")
    _, console, _ = osc(sandbox, "server add volume cli-vm cli-data", "console log show cli-vm")
    assert f"{sandbox.ssh_host(server['id']).host_key_fingerprint} root@cli-vm (ED25519)" in console
    wait_for(lambda: state(sandbox)["volume_records"][-1]["status"] == "in-use", what="in-use")
    assert [v["device"] for v in state(sandbox)["volumes"]] == ["/dev/vda", "/dev/vdb"]

    osc(sandbox, "server delete --wait cli-vm")
    (servers, volumes), _, err = osc(
        sandbox,
        "server list -f json",
        "volume list -f json",
        f"server create --image {image_ids['Ubuntu 24.04']} --flavor m1.large --network sandbox-net too-big",
        check=False,
    )
    assert servers == []
    assert {v["Name"]: v["Status"] for v in volumes} == {"cli-data": "available", "": "available"}
    assert "Quota exceeded for ram: Requested 16384, but already used 0 of 8192 ram" in err
