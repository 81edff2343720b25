"""Fixtures for the sandbox cloud: a running Sandbox (fast delays) and openstacksdk connections to it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tui.sandbox import Delays, Sandbox


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    sb = Sandbox(tmp_path / "sandbox", delays=Delays.fast())
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()


def connect(sb: Sandbox, cloud: str = "sandbox", **overrides: Any) -> Any:
    """An openstacksdk Connection built from the sandbox's clouds.yaml (nothing else is read)."""
    import openstack
    from openstack.config import loader

    config = loader.OpenStackConfig(config_files=[str(sb.clouds_yaml)], vendor_files=[])
    region = config.get_one(cloud, **overrides)
    return openstack.connection.Connection(config=region)


@pytest.fixture
def conn(sandbox: Sandbox) -> Iterator[Any]:
    c = connect(sandbox)
    yield c
    c.close()


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def known_hosts_from_console(console: str, port: int, host: str = "127.0.0.1") -> str:
    """What a careful client does: pin the host key the console log printed (cloud-init block)."""
    block = re.search(r"-----BEGIN SSH HOST KEY KEYS-----\n(.*?)\n-----END SSH HOST KEY KEYS-----", console, re.S)
    assert block, "no SSH HOST KEY KEYS block in the console log"
    lines = []
    for key_line in block.group(1).splitlines():
        key_type, blob = key_line.split()[:2]
        lines.append(f"[{host}]:{port} {key_type} {blob}")
    return "\n".join(lines) + "\n"
