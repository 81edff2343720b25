"""What a transfer is asked and what it answers: endpoints in scp's `NAME:path` form, the request, progress, summary.

Pure (no asyncssh): the UI and the CLI import these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from tui.core.cloud.base import InvalidInput
from tui.core.errors import ManagerError

_DRIVE = re.compile(r"^[A-Za-z]:([\\/]|$)")


class TransferError(ManagerError):
    """A transfer could not go on; `str()` says why and what to do."""


class TransferCut(TransferError):
    """The connection went away mid-way (or could not be made): running it again resumes."""


@dataclass(frozen=True)
class Endpoint:
    """One side: `instance` empty for a local path. A remote path is as typed (`~` and relative paths are from
    the VM's home, resolved there)."""

    instance: str
    path: str

    @property
    def remote(self) -> bool:
        return bool(self.instance)

    def __str__(self) -> str:
        return f"{self.instance}:{self.path}" if self.instance else self.path


def parse_endpoint(text: str) -> Endpoint:
    """scp's rule: `NAME:path` is remote when a colon comes before any slash. Local whatever else: `./a:b`,
    `/x:y`, `~/a:b`, a Windows drive `C:\\x` or `C:/x`."""
    if not text:
        raise InvalidInput("an empty path", "give a local path or NAME:path")
    name, colon, rest = text.partition(":")
    if not colon or "/" in name or "\\" in name or not name or _DRIVE.match(text) or name.startswith((".", "~")):
        return Endpoint("", text)
    return Endpoint(name, rest)


@dataclass(frozen=True)
class TransferRequest:
    """`cp` copies SRC (a file, or a folder with `recursive`) to DST like scp; `sync` makes folder DST hold what
    folder SRC holds, skipping unchanged files (size + mtime, or SHA-256 with `checksum`)."""

    kind: Literal["cp", "sync"]
    src: Endpoint
    dst: Endpoint
    recursive: bool = False
    delete: bool = False
    exclude: tuple[str, ...] = ()
    checksum: bool = False
    verify: bool = True

    def remote_side(self) -> Endpoint:
        """The one remote endpoint; both local or both remote is refused (exit 2)."""
        if self.src.remote == self.dst.remote:
            both = "remote" if self.src.remote else "local"
            raise InvalidInput(f"{self.src} and {self.dst} are both {both}",
                               "one side must be NAME:path (an instance) and the other a local path")
        if self.delete and self.kind != "sync":
            raise InvalidInput("--delete is for sync", "use sync SRC DST --delete")
        return self.src if self.src.remote else self.dst

    @property
    def upload(self) -> bool:
        return self.dst.remote


@dataclass(frozen=True)
class TransferProgress:
    """Where a transfer is: the current file's bytes, the whole transfer's, the rate and what is left (ETA)."""

    path: str
    file_done: int
    file_size: int
    done: int
    total: int
    rate: float  # bytes/s over the whole transfer so far
    eta: float | None  # seconds; None until the rate is known
    files_done: int = 0
    files_total: int = 0


@dataclass
class TransferSummary:
    """The result. `files`: every file considered; `transferred` of them moved (`bytes` sent over the wire,
    `resumed` bytes kept from earlier partial files), `skipped` unchanged; `links`: the symbolic links considered,
    `links_copied` of them made as links (the others the same already); `deleted` with --delete (links
    included); `failed` with why. `via`: the data path."""

    files: int = 0
    transferred: int = 0
    skipped: int = 0
    bytes: int = 0
    resumed: int = 0
    deleted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    via: str = ""
    src: str = ""
    dst: str = ""
    links: int = 0
    links_copied: int = 0
