"""SSH key pairs the app owns, and which private key belongs to which instance.

Private keys live in the app's data dir, readable by the user alone (mode 0600; an owner-only ACL on Windows), and
are never printed or copied anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import asyncssh

from tui.core import paths, platform

APP_KEY = "cades-tui"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def write_private(path: Path, data: bytes) -> None:
    """Create `path` readable by its owner alone (mode 0600 on POSIX; on Windows an ACL granting the current user
    alone, which OpenSSH for Windows demands of a private key) atomically: never readable by others, not even
    briefly — the temporary file is restricted before its first byte (a leftover one may have had another mode)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        platform.restrict_to_owner(tmp)
        fh.write(data)
    os.replace(tmp, path)


class KeyStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or paths.data_dir()
        self.keys_dir = self.root / "keys"
        self.map_file = self.root / "instance_keys.json"

    def private_path(self, name: str) -> Path:
        return self.keys_dir / name

    def generate(self, name: str) -> tuple[Path, str]:
        """A new ed25519 key pair `name`: (private key path, public key line). Refuses to overwrite."""
        if not _NAME_RE.match(name):
            raise ValueError(f"key name {name!r}: use letters, digits, '.', '_' or '-'")
        paths.ensure_private_dir(self.keys_dir)
        path = self.private_path(name)
        if path.exists():
            raise FileExistsError(f"{path} already exists; pick another name")
        key = asyncssh.generate_private_key("ssh-ed25519", comment=f"{name} (cades-tui)")
        write_private(path, key.export_private_key("openssh"))
        public = key.export_public_key("openssh").decode().strip()
        (path.with_suffix(".pub")).write_text(public + "\n")
        return path, public

    def public_key(self, name: str) -> str:
        path = self.private_path(name)
        pub = path.with_suffix(".pub")
        if pub.exists():
            return pub.read_text().strip()
        return asyncssh.read_private_key(path).export_public_key("openssh").decode().strip()

    def app_key(self) -> tuple[str, Path, str]:
        """The app's own key pair, generated on first use: (cloud key pair name, private path, public line)."""
        path = self.private_path(APP_KEY)
        public = self.public_key(APP_KEY) if path.exists() else self.generate(APP_KEY)[1]
        digest = hashlib.sha256(public.split()[1].encode()).hexdigest()[:8]
        return f"{APP_KEY}-{digest}", path, public

    def private_for(self, public_key: str, fingerprint: str = "") -> Path | None:
        """The private key kept here whose public half is `public_key` (or has the cloud's `fingerprint`: MD5 as
        Nova shows it, or SHA256), whatever the key pair is called in the cloud; None when there is none."""
        wanted = public_key.split()[1] if len(public_key.split()) > 1 else ""
        try:
            candidates = sorted(p for p in self.keys_dir.iterdir() if p.is_file() and not p.suffix)
        except OSError:
            return None
        for path in candidates:
            try:
                line = self.public_key(path.name)
            except (OSError, ValueError, asyncssh.KeyImportError):
                continue
            blob = line.split()[1] if len(line.split()) > 1 else ""
            if blob and (blob == wanted or fingerprint in (md5_fingerprint(line), _sha256_or_empty(line))):
                return path
        return None

    # instance id -> private key path
    def remember(self, instance_id: str, key_path: Path) -> None:
        mapping = self._load()
        mapping[instance_id] = str(key_path)
        paths.ensure_private_dir(self.root)
        write_private(self.map_file, json.dumps(mapping, indent=1, sort_keys=True).encode())

    def key_for(self, instance_id: str) -> Path | None:
        value = self._load().get(instance_id)
        return Path(value) if value else None

    def forget(self, instance_id: str) -> None:
        mapping = self._load()
        if mapping.pop(instance_id, None) is not None:
            write_private(self.map_file, json.dumps(mapping, indent=1, sort_keys=True).encode())

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.map_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def md5_fingerprint(public_line: str) -> str:
    """The MD5 fingerprint as Nova shows a key pair's: `aa:bb:...`."""
    import base64

    digest = hashlib.md5(base64.b64decode(public_line.split()[1]), usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _sha256_or_empty(public_line: str) -> str:
    try:
        return fingerprint(public_line)
    except (ValueError, asyncssh.KeyImportError):
        return ""


def fingerprint(public_line: str) -> str:
    """OpenSSH-style SHA256 fingerprint of a public key line."""
    return str(asyncssh.import_public_key(public_line).get_fingerprint("sha256"))
