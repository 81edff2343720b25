"""Sizes as the whole app says them (panes, dialogs, refusals, the CLI): RAM humanized in binary units.

Nova counts RAM in MiB; people read "2 GiB", "1.5 GiB", "512 MiB". Zero is "0 B", and an amount left of a quota
that is used up is "none left" — never "0 MiB left".
"""

from __future__ import annotations


def ram(mb: int) -> str:
    """RAM given in MiB: "2 GiB", "1.5 GiB", "512 MiB", "0 B"."""
    if mb < 0:
        return f"-{ram(-mb)}"
    if mb == 0:
        return "0 B"
    if mb < 1024:
        return f"{mb} MiB"
    if mb % 1024 == 0:
        return f"{mb // 1024} GiB"
    return f"{mb / 1024:.1f}".rstrip("0").rstrip(".") + " GiB"


def left(amount: int, text: str = "") -> str:
    """What is left of a quota: "2 GiB left" (`text` is the amount as said, default the number), or "none left"."""
    return "none left" if amount <= 0 else f"{text or amount} left"


def plural(n: int, one: str, many: str = "") -> str:
    """`1 volume`, `2 volumes`, `0 volumes`."""
    return f"{n} {one if n == 1 else (many or one + 's')}"
