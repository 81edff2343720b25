"""What a transfer will do, from the two sides' listings: files to send (with a resume offset to check), files
skipped as unchanged, symbolic links to copy as links (sync: skipped when the same target text is there), folders
to make, and (sync --delete) what goes, links included. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NS = 1_000_000_000


@dataclass
class Item:
    src: str
    dst: str
    size: int
    offset: int = 0  # resume from here once both sides' prefixes hash alike


@dataclass
class TransferPlan:
    send: list[Item] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    same_size: list[Item] = field(default_factory=list)  # --checksum: hashed on both sides before deciding
    resume: list[Item] = field(default_factory=list)  # a partial file is there: its prefix to check
    dirs: list[str] = field(default_factory=list)
    delete_files: list[str] = field(default_factory=list)
    delete_dirs: list[str] = field(default_factory=list)
    links: list[Item] = field(default_factory=list)  # symbolic links to make (or replace) at the destination
    links_skipped: list[str] = field(default_factory=list)  # the same link is there already (sync)

    @property
    def files(self) -> int:
        return len(self.send) + len(self.skipped) + len(self.same_size)


def unchanged(src: list[int], dst: list[int] | None) -> bool:
    """Same size and the same mtime to the second (what rsync compares; file systems keep mtimes finer or not)."""
    return dst is not None and src[0] == dst[0] and src[1] // NS == dst[1] // NS


def make_plan(src: dict[str, Any], dst: dict[str, Any], pairs: list[tuple[str, str]], *, skip_unchanged: bool,
              checksum: bool, delete: bool) -> TransferPlan:
    """`src`/`dst`: the helper's listings (`files`, `dirs`, `parts`); `pairs`: (source rel, destination rel)."""
    plan = TransferPlan()
    sfiles, dfiles, parts = src["files"], dst["files"], dst["parts"]
    for s, d in pairs:
        meta = sfiles[s]
        item = Item(s, d, meta[0])
        theirs = dfiles.get(d)
        if skip_unchanged and not checksum and unchanged(meta, theirs):
            plan.skipped.append(d)
            continue
        if skip_unchanged and checksum and theirs is not None and theirs[0] == meta[0]:
            plan.same_size.append(item)
            continue
        plan.send.append(item)
        part = parts.get(d, 0)
        if 0 < part <= meta[0]:
            item.offset = part
            plan.resume.append(item)
    slinks, dlinks = src.get("links", {}), dst.get("links", {})
    for rel in sorted(slinks):
        theirs = dlinks.get(rel)
        if skip_unchanged and theirs is not None and theirs[0] == slinks[rel][0]:
            plan.links_skipped.append(rel)
        else:
            plan.links.append(Item(rel, rel, 0))
    have = set(dst["dirs"])
    plan.dirs = [d for d in src["dirs"] if d not in have]
    if delete:
        wanted = {d for _, d in pairs} | set(slinks)
        plan.delete_files = sorted(f for f in [*dfiles, *dlinks] if f not in wanted)
        plan.delete_dirs = sorted(d for d in dst["dirs"] if d not in set(src["dirs"]))
    return plan
