"""The sandbox's credentials: its passwords, application credential and TOTP secret (secrets.json, made once),
RFC 6238 passcodes, and the clouds.yaml that names them for clients."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path
from typing import Any

from tui.sandbox import identity
from tui.sandbox.state import write_private

CLOUD_NAME = "sandbox"


def new_secrets() -> dict[str, str]:
    return {
        "password": secrets.token_urlsafe(18),
        "app_cred_id": secrets.token_hex(16),
        "app_cred_name": "cades-tui",
        "app_cred_secret": secrets.token_urlsafe(24),
        "totp_secret": base64.b32encode(secrets.token_bytes(20)).decode(),  # as Keystone's `totp` credential blob
        "mfa_password": secrets.token_urlsafe(18),
    }


def load_secrets(path: Path) -> dict[str, str]:
    """The secrets kept in `path`; made (and written, private) on the first start; those an older sandbox did not
    make yet are added."""
    values: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = {k: v for k, v in new_secrets().items() if k not in values}
    if missing:
        values |= missing
        write_private(path, json.dumps(values, indent=2))
    return values


def totp(secret_b32: str, at: float | None = None, step: int = 30, digits: int = 6) -> str:
    """The RFC 6238 passcode (HMAC-SHA1, as Keystone's TOTP auth checks it) of a base32 secret at time `at`."""
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(key, counter.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    code = (int.from_bytes(mac[offset:offset + 4], "big") & 0x7FFFFFFF) % 10**digits
    return str(code).zfill(digits)


def write_clouds_yaml(path: Path, auth_url: str, values: dict[str, str]) -> None:
    """The clouds "sandbox" (password), "sandbox-appcred" (application credential), "sandbox-totp" (a TOTP
    passcode, asked for: clouds.yaml cannot hold one) and "sandbox-mfa" (password and passcode of the user whose
    sign-in needs both), written to `path`."""
    import yaml

    common = {"region_name": "RegionOne", "identity_api_version": 3, "interface": "public"}
    project = {"project_name": identity.PROJECT, "project_domain_name": "Default"}
    clouds: dict[str, Any] = {
        CLOUD_NAME: {
            "auth": {
                "auth_url": auth_url,
                "username": identity.USER,
                "password": values["password"],
                "user_domain_name": "Default",
                **project,
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
        f"{CLOUD_NAME}-totp": {
            "auth_type": "v3totp",
            "auth": {"auth_url": auth_url, "username": identity.USER, "user_domain_name": "Default", **project},
            **common,
        },
        f"{CLOUD_NAME}-mfa": {
            "auth_type": "v3multifactor",
            "auth_methods": ["v3password", "v3totp"],
            "auth": {"auth_url": auth_url, "username": identity.MFA_USER, "password": values["mfa_password"],
                     "user_domain_name": "Default", **project},
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
