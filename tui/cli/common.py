"""What every command shares: the exit codes, the Context (profile, output, cloud on first use), output helpers.

Light at import time (no openstacksdk, no humanize): `cades-tui --help` imports every group module, and they
import this one.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui.core.cloud.base import Cloud
    from tui.core.cloud.signin import Wanted
    from tui.core.config import Settings
    from tui.core.models import Instance

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
SIGNAL_NAMES = {2: "Ctrl+C", 15: "SIGTERM", 1: "SIGHUP", 21: "Ctrl+Break or console closed"}  # 21: SIGBREAK (Windows)


class Context:
    """What a command needs; the cloud connection is made on first use (it imports openstacksdk)."""

    def __init__(self, settings: Settings, out: Any = None) -> None:
        self.settings = settings
        self.out = out or sys.stdout
        self._cloud: Cloud | None = None

    @property
    def cloud(self) -> Cloud:
        if self._cloud is None:
            self._cloud = make_cloud(self.settings)
        return self._cloud

    def print(self, text: str = "") -> None:
        print(text, file=self.out)

    def json(self, data: Any) -> None:
        json.dump(to_jsonable(data), self.out, indent=2)
        self.out.write("\n")


def say(message: str) -> None:
    """Progress and notes on stderr: stdout stays the command's output (for pipes and --json)."""
    print(message, file=sys.stderr, flush=True)


def err(message: str) -> None:
    """The one error line of a failed command."""
    say(f"cades-tui: error: {plain(message)}")


def quiet_stdout() -> None:
    """Point stdout at /dev/null once its reader is gone (`cades-tui open NAME | sed ...` and Ctrl+C): what is
    still said, and the interpreter's last flush, must not raise BrokenPipeError (and print a traceback)."""
    import contextlib
    import os

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


_TAG = re.compile(r"<[^>]{0,200}>")


def plain(text: str) -> str:
    """`text` without HTML markup and with its whitespace collapsed: some clouds answer errors with HTML
    (`The resource could not be found.<br /><br />`)."""
    import html

    return " ".join(html.unescape(_TAG.sub(" ", text)).split())


def make_cloud(settings: Settings) -> Cloud:
    """The cloud named by the profile, authenticated (a malformed clouds.yaml is named with its line); a password
    or TOTP passcode clouds.yaml does not hold is asked for on the terminal."""
    from tui.core.cloud.clouds_yaml import open_cloud

    return open_cloud(settings.cloud, settings.clouds_yaml, ask_on_terminal)


def ask_on_terminal(wanted: Wanted) -> str | None:
    """A password or passcode typed on the terminal (not echoed); None at end of input. Without a terminal: one
    line naming the variable that supplies it (OS_PASSCODE, OS_PASSWORD), exit code 2."""
    import getpass

    from tui.core.cloud.signin import no_answer

    if not sys.stdin.isatty():
        raise no_answer(wanted, "there is no terminal to ask on")
    try:
        return getpass.getpass(wanted.prompt)
    except EOFError:
        return None


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        from tui.core.models import Instance

        data = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Instance):
            data["metadata"] = dict(value.metadata)
            data["ip"], data["ssh_port"] = value.ip, value.ssh_port
            data["uptime_s"] = value.uptime_seconds()
        return data
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def uptime(inst: Instance, now: datetime | None = None) -> str:
    import humanize

    seconds = inst.uptime_seconds(now)
    return "-" if seconds is None else humanize.naturaldelta(seconds)


def ram(mb: int) -> str:
    from tui.core.units import ram

    return ram(mb)


def used(used_: int, limit: int, unit: Callable[[int], str] = str) -> str:
    return f"{unit(used_)} of {'unlimited' if limit < 0 else unit(limit)}"


def confirm_typed(prompt: str, expected: str) -> bool:
    """Ask on a terminal for `expected` to be typed; refuse when there is no terminal."""
    from tui.core.cloud.base import InvalidInput

    if not sys.stdin.isatty():
        raise InvalidInput("refusing a destructive action without a terminal to confirm on", "pass --yes in scripts")
    try:
        answer = input(f"{prompt}\nType {expected!r} to confirm: ")
    except EOFError:
        return False
    return answer.strip() == expected


def yes(answer: str) -> bool:
    return answer.strip().lower() in ("y", "yes")
