"""Sign-ins against the tier's real Keystone: users, tokens, application credentials, TOTP — for auth tests.

`KeystoneAccess` (the `keystone` fixture) knows Keystone's URL and the admin's and the demo user's credentials, and
makes what an auth test needs: a user of its own (`create_user`), a token (`issue_token`), an application
credential (`app_credential`), a user with a TOTP credential and its passcodes (`totp_user`, `totp`), and a
clouds.yaml holding one entry (`clouds_yaml`) for the app's connect path (`OpenStackCloud.from_config`).
`endpoints` maps each service type to its URL in the demo project, for sign-ins without a catalog
(`admin_token`, `none`: `compute_endpoint_override` and the like).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REGION = "RegionOne"


@dataclass(frozen=True)
class User:
    name: str
    id: str
    password: str
    project: str
    project_id: str


@dataclass
class KeystoneAccess:
    url: str  # the identity endpoint, .../v3
    admin_password: str
    demo: User  # the member of project `demo`, who owns the seeded network
    workdir: Path  # where clouds.yaml files go (mode 0600)
    endpoints: dict[str, str] = field(default_factory=dict)  # service type -> URL, for *_endpoint_override
    _made: list[str] = field(default_factory=list)

    # --- connections -----------------------------------------------------------------------------------------
    def connect(self, user: User | None = None) -> Any:
        """An openstacksdk connection with `user`'s password (the admin when None)."""
        import openstack

        name, password, project = (user.name, user.password, user.project) if user else (
            "admin", self.admin_password, "admin")
        return openstack.connect(load_yaml_config=False, load_envvars=False, auth_url=self.url, username=name,
                                 password=password, project_name=project, user_domain_name="Default",
                                 project_domain_name="Default", region_name=REGION, identity_api_version="3")

    def password_auth(self, user: User | None = None) -> dict[str, Any]:
        """The `auth:` block of a clouds.yaml entry for `user` (the demo user by default)."""
        user = user or self.demo
        return {"auth_url": self.url, "username": user.name, "password": user.password,
                "project_name": user.project, "user_domain_name": "Default", "project_domain_name": "Default"}

    def clouds_yaml(self, name: str, auth: dict[str, Any], auth_type: str | None = None, **more: Any) -> Path:
        """A clouds.yaml with the one cloud `name` (auth_type omitted means password); its path."""
        entry: dict[str, Any] = {"auth": auth, "region_name": REGION, "identity_api_version": 3, **more}
        if auth_type:
            entry["auth_type"] = auth_type
        path = self.workdir / f"clouds-{name}-{secrets.token_hex(3)}.yaml"
        path.write_text(yaml.safe_dump({"clouds": {name: entry}}))
        path.chmod(0o600)
        return path

    # --- credentials -----------------------------------------------------------------------------------------
    def create_user(self, name: str | None = None, role: str = "member") -> User:
        """A new user with `role` in project demo."""
        admin = self.connect()
        name = name or f"user-{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(16)
        made = admin.identity.create_user(name=name, password=password, domain_id="default",
                                          default_project_id=self.demo.project_id)
        admin.identity.assign_project_role_to_user(self.demo.project_id, made.id,
                                                   admin.identity.find_role(role, ignore_missing=False))
        self._made.append(made.id)
        return User(name, made.id, password, self.demo.project, self.demo.project_id)

    def issue_token(self, user: User | None = None) -> str:
        """A fresh project-scoped token of `user` (the demo user by default)."""
        token: str = self.connect(user or self.demo).auth_token
        return token

    def app_credential(self, user: User | None = None, **attrs: Any) -> tuple[str, str]:
        """A new application credential of `user` (made by the user, as Horizon does): its id and secret."""
        user = user or self.demo
        conn = self.connect(user)
        cred = conn.identity.create_application_credential(user=user.id, name=f"ac-{secrets.token_hex(4)}",
                                                            **attrs)
        return str(cred.id), str(cred.secret)

    def totp_user(self) -> tuple[User, str]:
        """A new user with a TOTP credential: the user and the base32 secret (`totp(secret)` gives a passcode)."""
        user = self.create_user()
        secret = base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")
        self.connect().identity.create_credential(type="totp", user_id=user.id, blob=secret)
        return user, secret

    @staticmethod
    def totp(secret: str, at: float | None = None) -> str:
        """The 6-digit TOTP passcode (RFC 6238, SHA-1, 30 s) Keystone expects for `secret` at time `at`."""
        key = base64.b32decode(secret + "=" * (-len(secret) % 8))
        digest = hmac.new(key, struct.pack(">Q", int((at or time.time()) // 30)), hashlib.sha1).digest()
        offset = digest[-1] & 0x0F
        return f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"

    def cleanup(self) -> None:
        """Delete the users this helper made."""
        admin = self.connect()
        for user_id in self._made:
            admin.identity.delete_user(user_id, ignore_missing=True)
        self._made.clear()
