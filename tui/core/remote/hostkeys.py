"""Host keys: the cloud-init blocks of a console log, the app's own known_hosts file, and the policy.

Policy, in order (host key checking is never disabled):
- PINNED: the cloud's console log printed the instance's host keys (or only their fingerprints): trust
  exactly those and record the key in known_hosts once the connection succeeds.
- KNOWN: known_hosts has keys for host:port: trust exactly those; a different key is CHANGED (refused).
- TOFU: nothing known: refuse, reporting the key's fingerprint so the user can accept it once.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import asyncssh

from tui.core import paths

FINGERPRINTS_BEGIN = "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
FINGERPRINTS_END = "-----END SSH HOST KEY FINGERPRINTS-----"
KEYS_BEGIN = "-----BEGIN SSH HOST KEY KEYS-----"
KEYS_END = "-----END SSH HOST KEY KEYS-----"

_KEY_RE = re.compile(
    r"\b((?:ssh-(?:ed25519|rsa|dss)|ecdsa-sha2-nistp(?:256|384|521)|sk-[a-z0-9@.-]+))\s+(AAAA[0-9A-Za-z+/]+=*)"
)
_SHA256_RE = re.compile(r"\bSHA256:([0-9A-Za-z+/]{43})")
_MD5_RE = re.compile(r"\b(?:MD5:)?((?:[0-9a-f]{2}:){15}[0-9a-f]{2})\b")


class HostKeyPolicy(StrEnum):
    PINNED = "pinned"
    KNOWN = "known"
    TOFU = "tofu"


@dataclass(frozen=True, slots=True)
class ConsoleHostKeys:
    """Host keys an instance printed on its console (cloud-init), as `type base64` lines."""

    fingerprints: tuple[str, ...] = ()  # "SHA256:..." or "MD5:aa:bb:..."
    keys: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.fingerprints or self.keys)


def _last_block(text: str, begin: str, end: str) -> str:
    start = text.rfind(begin)
    if start < 0:
        return ""
    stop = text.find(end, start)
    return text[start + len(begin) : stop if stop >= 0 else len(text)]


def parse_console_host_keys(console_log: str) -> ConsoleHostKeys:
    """Parse cloud-init's host key blocks; the last block wins (the most recent boot).

    Lines may carry prefixes such as `ec2: ` or a syslog header; they are ignored.
    """
    fp_block = _last_block(console_log, FINGERPRINTS_BEGIN, FINGERPRINTS_END)
    key_block = _last_block(console_log, KEYS_BEGIN, KEYS_END)
    fingerprints = [f"SHA256:{m}" for m in _SHA256_RE.findall(fp_block)]
    fingerprints += [f"MD5:{m}" for m in _MD5_RE.findall(fp_block)]
    keys = [f"{t} {b}" for t, b in _KEY_RE.findall(key_block)]
    return ConsoleHostKeys(tuple(dict.fromkeys(fingerprints)), tuple(dict.fromkeys(keys)))


def key_line(key: asyncssh.SSHKey) -> str:
    """`type base64` of a public key (no comment)."""
    return " ".join(key.export_public_key("openssh").decode().split()[:2])


def fingerprint(key: asyncssh.SSHKey | str) -> str:
    """OpenSSH SHA256 fingerprint of a key or a `type base64` line."""
    if isinstance(key, str):
        key = asyncssh.import_public_key(key)
    return str(key.get_fingerprint("sha256"))


def _matches_fingerprint(key: asyncssh.SSHKey, fingerprints: tuple[str, ...]) -> bool:
    return fingerprint(key) in fingerprints or str(key.get_fingerprint("md5")) in fingerprints


def host_pattern(host: str, port: int) -> str:
    """The known_hosts spelling of host:port (OpenSSH's)."""
    return host if port == 22 else f"[{host}]:{port}"


class KnownHosts:
    """The app's own known_hosts file (OpenSSH format, plain host patterns), written atomically."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else paths.data_dir() / "known_hosts"

    def _lines(self) -> list[str]:
        try:
            return self.path.read_text().splitlines()
        except FileNotFoundError:
            return []

    def keys_for(self, host: str, port: int) -> list[str]:
        pattern = host_pattern(host, port)
        out = []
        for line in self._lines():
            parts = line.split()
            if len(parts) >= 3 and not line.startswith(("#", "@")) and pattern in parts[0].split(","):
                out.append(f"{parts[1]} {parts[2]}")
        return out

    def add(self, host: str, port: int, key: str) -> None:
        """Trust `key` (a `type base64` line) for host:port, keeping other keys."""
        if key not in self.keys_for(host, port):
            self._write([*self._lines(), f"{host_pattern(host, port)} {key}"])

    def replace(self, host: str, port: int, keys: list[str]) -> None:
        """Trust exactly `keys` for host:port."""
        pattern = host_pattern(host, port)
        kept = [line for line in self._lines() if not self._is_for(line, pattern)]
        self._write(kept + [f"{pattern} {k}" for k in keys])

    def remove(self, host: str, port: int) -> None:
        self.replace(host, port, [])

    @staticmethod
    def _is_for(line: str, pattern: str) -> bool:
        parts = line.split()
        return bool(parts) and not line.startswith("#") and pattern in parts[0].split(",")

    def _write(self, lines: list[str]) -> None:
        paths.ensure_private_dir(self.path.parent)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".known_hosts.")
        try:
            with os.fdopen(fd, "w") as f:
                f.write("".join(line + "\n" for line in lines))
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class HostKeyVerifier:
    """Decides on one connection attempt's host key; asyncssh asks `accepts` for untrusted keys."""

    def __init__(self, store: KnownHosts, host: str, port: int, pinned: ConsoleHostKeys | None = None) -> None:
        self.store = store
        self.host = host
        self.port = port
        self.pinned = pinned or ConsoleHostKeys()
        self.known = store.keys_for(host, port)
        self.presented: asyncssh.SSHKey | None = None

    @property
    def policy(self) -> HostKeyPolicy:
        if self.pinned:
            return HostKeyPolicy.PINNED
        return HostKeyPolicy.KNOWN if self.known else HostKeyPolicy.TOFU

    def trusted_keys(self) -> list[asyncssh.SSHKey]:
        """Keys trusted outright (they also steer host key algorithm negotiation)."""
        lines = self.pinned.keys if self.policy is HostKeyPolicy.PINNED else self.known
        return [asyncssh.import_public_key(line) for line in lines]

    def accepts(self, key: asyncssh.SSHKey) -> bool:
        """Called for a presented key that is not among `trusted_keys()`."""
        self.presented = key
        if self.policy is HostKeyPolicy.PINNED and not self.pinned.keys:
            return _matches_fingerprint(key, self.pinned.fingerprints)
        return False

    def expected_fingerprints(self) -> tuple[str, ...]:
        if self.policy is HostKeyPolicy.PINNED:
            return tuple(fingerprint(k) for k in self.pinned.keys) or self.pinned.fingerprints
        return tuple(fingerprint(k) for k in self.known)

    def confirmed(self, key: asyncssh.SSHKey | None) -> None:
        """The connection succeeded with `key`: remember a pinned key for later sessions."""
        if key is not None and self.policy is HostKeyPolicy.PINNED:
            line = key_line(key)
            if self.known != [line]:
                self.store.replace(self.host, self.port, [line])
