"""What goes wrong in a Dask cluster: `ClusterError` (with a hint) and its kinds, and the helpers that word them
(a log's tail, a list of names, the most telling of several errors)."""

from __future__ import annotations

from collections.abc import Iterable

from tui.core.errors import CadesError, Declined, Refused, RetryLater


class ClusterError(CadesError):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ClusterCancelled(ClusterError, Declined):
    """The user declined the confirmation: nothing changed (not a failure)."""


class PortTaken(ClusterError, Refused):
    """The scheduler's (or dashboard's) port on the head is used by another process."""


class DaskMissing(ClusterError):
    """The head's environment has no dask/distributed (and installing was not allowed or failed)."""


class VersionMismatch(ClusterError):
    """A worker's Python or packages differ from the head's and could not be made equal."""


class StartTimeout(ClusterError, RetryLater):
    """Not every worker connected to the scheduler in time."""


def first_error(errors: list[BaseException]) -> BaseException:
    """The most telling error: a port taken beats a version mismatch beats anything else."""
    for kind in (PortTaken, DaskMissing, VersionMismatch, ClusterError):
        for e in errors:
            if isinstance(e, kind):
                return e
    return errors[0]


def tail(text: str, lines: int = 6) -> str:
    """The last non-blank lines of a command's output (or a log), on one line."""
    kept = [ln for ln in text.strip().splitlines() if ln.strip()][-lines:]
    return " | ".join(kept) or "no output"


def q_names(names: Iterable[str]) -> str:
    return ", ".join(names) or "none"
