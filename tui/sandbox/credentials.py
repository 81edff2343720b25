"""The sandbox's credentials: its password and application credential (secrets.json, made once), and the
clouds.yaml that names them for clients."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from tui.sandbox import identity
from tui.sandbox.state import write_private

CLOUD_NAME = "sandbox"


def load_secrets(path: Path) -> dict[str, str]:
    """The secrets kept in `path`; made (and written, private) on the first start."""
    if path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        return loaded
    values = {
        "password": secrets.token_urlsafe(18),
        "app_cred_id": secrets.token_hex(16),
        "app_cred_name": "cades-tui",
        "app_cred_secret": secrets.token_urlsafe(24),
    }
    write_private(path, json.dumps(values, indent=2))
    return values


def write_clouds_yaml(path: Path, auth_url: str, values: dict[str, str]) -> None:
    """The clouds "sandbox" (password) and "sandbox-appcred" (application credential), written to `path`."""
    import yaml

    common = {"region_name": "RegionOne", "identity_api_version": 3, "interface": "public"}
    clouds = {
        CLOUD_NAME: {
            "auth": {
                "auth_url": auth_url,
                "username": identity.USER,
                "password": values["password"],
                "project_name": identity.PROJECT,
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            },
            **common,
        },
        f"{CLOUD_NAME}-appcred": {
            "auth_type": "v3applicationcredential",
            "auth": {
                "auth_url": auth_url,
                "application_credential_id": values["app_cred_id"],
                "application_credential_secret": values["app_cred_secret"],
            },
            **common,
        },
    }
    text = yaml.safe_dump({"clouds": clouds}, sort_keys=False)
    try:
        unchanged = path.read_text() == text
    except OSError:
        unchanged = False
    if not unchanged:  # rewritten only when it changes: clients key their token caches by its mtime
        write_private(path, text)
