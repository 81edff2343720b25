"""The commands the app and the CLI suggest ("run `cades-tui setup vm1` again"), built in one place so that each
one works as printed: with the global options this run was started with (`--demo`, `--config PATH`,
`--cloud NAME`). The entry point (`tui.startup.prepare`) records them once; everything else calls `command()`."""

from __future__ import annotations

import shlex

_GLOBAL: list[str] = []


def set_invocation(*, demo: bool = False, config: str | None = None, cloud: str | None = None) -> None:
    """The global options of this run, repeated in every suggested command."""
    words = ["--demo"] if demo else []
    if config:
        words += ["--config", config]
    if cloud and not demo:
        words += ["--cloud", cloud]
    _GLOBAL[:] = words


def command(*words: str) -> str:
    """`cades-tui [this run's global options] WORDS...`, quoted for a shell (placeholders like NAME stay so)."""
    return " ".join(["cades-tui", *(shlex.quote(w) for w in [*_GLOBAL, *words])])
