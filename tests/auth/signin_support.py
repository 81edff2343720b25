"""Helpers of the sign-in tests: clouds.yaml entries of each auth type for a sandbox, a keystone token, reading
a listing."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import yaml

SERVER = "bench-0000"  # the name seed_servers gives the first server


def clouds_yaml(sb: Any, path: Path, **extra: dict[str, Any]) -> Path:
    """The sandbox's clouds.yaml plus `extra` entries, written to `path`."""
    data = yaml.safe_load(sb.clouds_yaml.read_text())
    data["clouds"].update(extra)
    path.write_text(yaml.safe_dump(data))
    return path


def keystone_token(sb: Any, scoped: bool = True) -> str:
    """A token as `openstack token issue` gets one: the password method, project-scoped or not."""
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
        "name": "demo", "domain": {"name": "Default"}, "password": sb.secrets["password"]}}}}
    if scoped:
        auth["scope"] = {"project": {"name": "cades-demo", "domain": {"name": "Default"}}}
    request = urllib.request.Request(f"{sb.auth_url}/v3/auth/tokens", json.dumps({"auth": auth}).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.headers["X-Subject-Token"])


def overrides(sb: Any) -> dict[str, str]:
    """Endpoint overrides for what a listing reads (Nova, Cinder): how `admin_token` and `none` find them."""
    return {"compute_endpoint_override": f"{sb.url}/compute/v2.1",
            "block_storage_endpoint_override": f"{sb.url}/volume/v3/{sb.state.data['project_id']}"}


def listed(result: tuple[int, str, str]) -> list[str]:
    """The names `list --json` printed; fails with its stderr when it failed."""
    code, out, err = result
    assert code == 0, f"exit {code}: {err}"
    return [i["name"] for i in json.loads(out)]
