"""Host key parsing and the app's known_hosts file (no network)."""

from __future__ import annotations

import stat
from pathlib import Path

import asyncssh

from tui.core.remote.hostkeys import (
    ConsoleHostKeys,
    HostKeyPolicy,
    HostKeyVerifier,
    KnownHosts,
    fingerprint,
    host_pattern,
    key_line,
    parse_console_host_keys,
)


def _key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519").convert_to_public()


def console_log(keys: list[str], prefix: str = "ec2: ") -> str:
    """A console log shaped like cloud-init's (prefixes, banner lines, noise around the blocks)."""
    fps = [f"{prefix}256 {fingerprint(k)} root@vm (ED25519)" for k in keys]
    return "\n".join(
        [
            "[    3.1] cloud-init[812]: Cloud-init v. 24.1 running 'modules:final'",
            f"{prefix}#############################################################",
            f"{prefix}-----BEGIN SSH HOST KEY FINGERPRINTS-----",
            *fps,
            f"{prefix}-----END SSH HOST KEY FINGERPRINTS-----",
            f"{prefix}#############################################################",
            "-----BEGIN SSH HOST KEY KEYS-----",
            *[f"{k} root@vm" for k in keys],
            "-----END SSH HOST KEY KEYS-----",
            "Ubuntu 24.04 LTS vm ttyS0",
        ]
    )


def test_parse_cloud_init_blocks_keys_and_fingerprints() -> None:
    a, b = key_line(_key()), key_line(_key())
    parsed = parse_console_host_keys(console_log([a, b]))
    assert parsed.keys == (a, b)
    assert parsed.fingerprints == (fingerprint(a), fingerprint(b))
    assert bool(parsed)


def test_parse_takes_the_last_boot_and_handles_syslog_prefixes() -> None:
    old, new = key_line(_key()), key_line(_key())
    text = console_log([old]) + "\n...reboot...\n" + console_log([new], prefix="<14>Nov 25 10:00:00 ec2: ")
    parsed = parse_console_host_keys(text)
    assert parsed.keys == (new,)
    assert parsed.fingerprints == (fingerprint(new),)


def test_parse_md5_fingerprints_and_nothing() -> None:
    md5 = "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89"
    text = f"-----BEGIN SSH HOST KEY FINGERPRINTS-----\nec2: 2048 {md5} /etc/ssh/ssh_host_rsa_key.pub (RSA)\n"
    text += "-----END SSH HOST KEY FINGERPRINTS-----\n"
    assert parse_console_host_keys(text).fingerprints == (f"MD5:{md5}",)
    empty = parse_console_host_keys("boot ok\nlogin:")
    assert not empty and empty == ConsoleHostKeys()


def test_known_hosts_add_replace_remove_atomic(tmp_path: Path) -> None:
    store = KnownHosts(tmp_path / "data" / "known_hosts")
    a, b = key_line(_key()), key_line(_key())
    assert store.keys_for("10.0.0.5", 22) == []
    store.add("10.0.0.5", 22, a)
    store.add("10.0.0.5", 22, a)  # no duplicate
    store.add("127.0.0.1", 2222, b)
    text = store.path.read_text()
    assert text.splitlines() == [f"10.0.0.5 {a}", f"[127.0.0.1]:2222 {b}"]  # OpenSSH's spelling
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    store.replace("10.0.0.5", 22, [b])
    assert store.keys_for("10.0.0.5", 22) == [b]
    assert store.keys_for("127.0.0.1", 2222) == [b]
    store.remove("127.0.0.1", 2222)
    assert store.keys_for("127.0.0.1", 2222) == []
    assert [p.name for p in store.path.parent.iterdir()] == ["known_hosts"]  # no temp files left
    assert host_pattern("h", 22) == "h" and host_pattern("h", 2) == "[h]:2"


def test_verifier_policies(tmp_path: Path) -> None:
    store = KnownHosts(tmp_path / "known_hosts")
    key = _key()
    tofu = HostKeyVerifier(store, "h", 22)
    assert tofu.policy is HostKeyPolicy.TOFU and tofu.trusted_keys() == []
    assert tofu.accepts(key) is False and tofu.presented == key  # never trusted silently
    by_fp = HostKeyVerifier(store, "h", 22, ConsoleHostKeys(fingerprints=(fingerprint(key),)))
    assert by_fp.policy is HostKeyPolicy.PINNED and by_fp.accepts(key) is True
    assert by_fp.accepts(_key()) is False
    store.add("h", 22, key_line(key))
    known = HostKeyVerifier(store, "h", 22)
    assert known.policy is HostKeyPolicy.KNOWN and known.trusted_keys() == [key]
    assert known.accepts(_key()) is False
