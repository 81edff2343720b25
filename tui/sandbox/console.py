"""A cloud-init style serial console log for a sandbox server, with its real SSH host key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tui.sandbox.sshhost import fingerprint_sha256


def _syslog_time(iso: str) -> str:
    return datetime.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S").strftime("%b %d %H:%M:%S")


def _boot(
    hostname: str,
    image: dict[str, Any],
    flavor: dict[str, Any],
    ip: str,
    booted_at: str,
    host_key: str | None,
    first: bool,
) -> list[str]:
    version = image.get("os_version", "24.04")
    ts = _syslog_time(booted_at)
    stamp = datetime.strptime(booted_at[:19], "%Y-%m-%dT%H:%M:%S").strftime("%a, %d %b %Y %H:%M:%S +0000")
    ci = "cloud-init[512]: ci-info:"
    rule = "+--------+------+-----------------------------+---------------+--------+-------------------+"
    lines = [
        "[    0.000000] Linux version 6.8.0-45-generic (buildd@lcy02-amd64-075) #45-Ubuntu SMP x86_64 "
        f"({image['name']})",
        "[    0.000000] Command line: BOOT_IMAGE=/vmlinuz-6.8.0-45-generic root=LABEL=cloudimg-rootfs ro "
        "console=tty1 console=ttyS0",
        f"[    0.012345] Memory: {flavor['ram'] * 1024 - 180_000}K/{flavor['ram'] * 1024}K available",
        f"[    0.051230] smpboot: Allowing {flavor['vcpus']} CPUs, 0 hotplug CPUs",
        "[    1.402210] virtio_blk virtio2: [vda] 33554432 512-byte logical blocks",
        "[    2.918003] EXT4-fs (vda1): mounted filesystem with ordered data mode.",
        f"[    4.120556] cloud-init[512]: Cloud-init v. 24.1.3-0ubuntu3 running 'init' at {stamp}. Up 4.05 seconds.",
        f"[    4.133001] {ci} {'Net device info':+^{len(rule)}}",
        f"[    4.133201] {ci} {rule}",
        f"[    4.133301] {ci} | Device |  Up  |           Address           |      Mask     | Scope  |"
        "     Hw-Address    |",
        f"[    4.133401] {ci} |  ens3  | True | {ip:<27} | 255.255.0.0   | global | fa:16:3e:00:00:01 |",
        f"[    4.133501] {ci} {rule}",
    ]
    if first:
        lines += [
            "[    5.201100] cloud-init[512]: Generating public/private ed25519 key pair.",
            "[    5.201200] cloud-init[512]: Your identification has been saved in /etc/ssh/ssh_host_ed25519_key",
            "[    5.201300] cloud-init[512]: Your public key has been saved in /etc/ssh/ssh_host_ed25519_key.pub",
        ]
    if host_key is None:
        return lines
    fp = fingerprint_sha256(host_key)
    key_type, blob = host_key.split()[:2]
    lines += [
        f"[    7.880112] cloud-init[700]: Cloud-init v. 24.1.3-0ubuntu3 running 'modules:config' at {stamp}. "
        "Up 7.80 seconds.",
        f"<14>{ts} cloud-init: #############################################################",
        f"<14>{ts} cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----",
        f"<14>{ts} cloud-init: 256 {fp} root@{hostname} (ED25519)",
        f"<14>{ts} cloud-init: -----END SSH HOST KEY FINGERPRINTS-----",
        f"<14>{ts} cloud-init: #############################################################",
        "-----BEGIN SSH HOST KEY KEYS-----",
        f"{key_type} {blob} root@{hostname}",
        "-----END SSH HOST KEY KEYS-----",
        f"[    9.412345] cloud-init[780]: Cloud-init v. 24.1.3-0ubuntu3 finished at {stamp}. "
        "Datasource DataSourceOpenStackLocal [net,ver=2].  Up 9.40 seconds",
        "",
        f"Ubuntu {version} LTS {hostname} ttyS0",
        "",
        f"{hostname} login: ",
    ]
    return lines


def console_log(
    server: dict[str, Any],
    image: dict[str, Any],
    flavor: dict[str, Any],
    ip: str,
    host_key: str | None,
    length: int | None = None,
) -> str:
    """The serial log of every boot so far (`server["boots"]` timestamps); the last `length` lines if given."""
    hostname = "".join(c if c.isalnum() or c == "-" else "-" for c in server["name"]).strip("-").lower() or "ubuntu"
    lines: list[str] = []
    boots = server.get("boots") or []
    for i, booted_at in enumerate(boots):
        if i:
            lines += [
                "[  OK  ] Reached target reboot.target - System Reboot.",
                "[ 1234.567890] reboot: Restarting system",
            ]
        lines += _boot(hostname, image, flavor, ip, booted_at, host_key, first=i == 0)
    if length is not None and length >= 0:
        lines = lines[-length:] if length else []
    return "\n".join(lines) + ("\n" if lines else "")
