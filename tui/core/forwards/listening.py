"""What a VM listens on (TCP), read over the verified SSH connection: `ss -ltnpH`, else /proc/net/tcp{,6}.

`ss` names the process where the login may see it (its own processes; a root daemon's name is hidden). sshd is
left out: by name, and by port (22, or the port SSH reached the VM on) when the name is hidden.
"""

from __future__ import annotations

import re

from tui.core.forwards import Listener

PROC_MARK = "--proc-net-tcp--"
COMMAND = (f"ss -ltnpH 2>/dev/null || {{ echo {PROC_MARK}; cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; }}")
_USERS = re.compile(r'users:\(\("([^"]+)"')


def parse(text: str, ssh_port: int = 22) -> list[Listener]:
    """The listeners in `ss -ltnpH` output (or /proc/net/tcp rows after PROC_MARK), one per port, sshd excluded,
    by port."""
    lines = text.splitlines()
    found = _proc(lines[lines.index(PROC_MARK) + 1:]) if PROC_MARK in lines else _ss(lines)
    by_port: dict[int, Listener] = {}
    for item in found:
        if item.process.startswith("sshd") or (not item.process and item.port in (22, ssh_port)):
            continue
        known = by_port.get(item.port)
        if known is None or (not known.process and item.process) or _rank(item.address) < _rank(known.address):
            by_port[item.port] = item
    return [by_port[p] for p in sorted(by_port)]


def _rank(address: str) -> int:
    """Prefer the address a forward to the VM's 127.0.0.1 reaches: IPv4 wildcard and loopback before IPv6's."""
    order = {"0.0.0.0": 0, "*": 0, "127.0.0.1": 1, "::": 2, "[::]": 2, "::1": 3, "[::1]": 3}
    return order.get(address, 4)


def _ss(lines: list[str]) -> list[Listener]:
    out = []
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[0] != "LISTEN":
            continue
        address, _, port = fields[3].rpartition(":")
        if not port.isdigit():
            continue
        address = address.split("%", 1)[0]  # 127.0.0.53%lo
        match = _USERS.search(line)
        out.append(Listener(int(port), address.strip("[]") if address not in ("[::]",) else "::",
                            match.group(1) if match else ""))
    return out


def _proc(lines: list[str]) -> list[Listener]:
    out = []
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[3] != "0A" or ":" not in fields[1]:  # 0A: LISTEN
            continue
        hexaddr, _, hexport = fields[1].partition(":")
        try:
            out.append(Listener(int(hexport, 16), _address(hexaddr)))
        except ValueError:
            continue
    return out


def _address(hexaddr: str) -> str:
    """/proc/net/tcp's little-endian hex address as text (IPv4, or IPv6 in 4 little-endian words)."""
    import ipaddress

    raw = bytes.fromhex(hexaddr)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return str(ipaddress.IPv6Address(words))
