"""What a delete takes with it, in words: an instance (and the Dask cluster it heads), a cluster, or what a cluster
left behind. Pure (models only): the app's dialogs and the CLI's prompts word the same facts the same way.

The facts are gathered by `tui.core.cluster.teardown` (cloud listings, the head's Jupyter); these classes only hold
them and say them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tui.core.hints import command
from tui.core.models import Instance, Volume
from tui.core.units import plural


def names(items: Iterable[Instance]) -> str:
    return ", ".join(i.name for i in items)


def volumes_of(inst: Instance, volumes: Iterable[Volume]) -> tuple[Volume, ...]:
    """The instance's volumes: attached to it, or named by it (a boot volume)."""
    return tuple(v for v in volumes if inst.id in v.attached_to or v.id in inst.volume_ids)


def volume_phrase(volume: Volume, owner: str) -> str:
    """`boot volume of vm1-w2, 16 GB`; a named one `volume data of vm1, 20 GB`: always whose, and how big."""
    kind = "boot volume" if volume.bootable else "volume"
    named = volume.name and volume.name != volume.id
    label = f"{kind} {volume.name}" if named else (kind if volume.bootable else f"volume {volume.id[:8]}")
    return f"{label} of {owner}, {volume.size_gb} GB"


def _volumes_phrase(volumes: Sequence[Volume], owners: Sequence[Instance]) -> str:
    by_id = {i.id: i.name for i in owners}
    out = []
    for v in volumes:
        owner = next((by_id[s] for s in v.attached_to if s in by_id), "")
        owner = owner or next((i.name for i in owners if v.id in i.volume_ids), "?")
        out.append(volume_phrase(v, owner))
    return "; ".join(out)


@dataclass(frozen=True, slots=True)
class Leftover:
    """What a Dask cluster left after its head was deleted: its worker instances (`HEAD-wN`, still billing), their
    volumes, and its security group (`cades-dask-HEAD`, "" when gone)."""

    head: str
    workers: tuple[Instance, ...] = ()
    volumes: tuple[Volume, ...] = ()
    group: str = ""

    def text(self) -> str:
        parts = []
        if self.workers:
            worker = f"{plural(len(self.workers), 'worker instance')} ({names(self.workers)}"
            if self.volumes:
                worker += f"; {_volumes_phrase(self.volumes, self.workers)}"
            parts.append(worker + ")")
        if self.group:
            parts.append(f"the security group {self.group}")
        return (f"Left over from the Dask cluster of {self.head} (there is no instance {self.head} any more): "
                + " and ".join(parts))


@dataclass(frozen=True, slots=True)
class Deletion:
    """Deleting `instance`: its own volumes, and what goes with it — the Dask cluster it heads (`workers`, their
    volumes, the `group`, the dashboard tunnel), or, for a worker left over from a deleted head (`leftover_of`),
    its sibling workers and the group. `jupyter` says what runs on it and is lost ("" when nothing is known to run);
    `member_of` names the live head of a cluster it is a worker of; `tasks` counts the cluster's running tasks."""

    instance: Instance
    volumes: tuple[Volume, ...] = ()
    workers: tuple[Instance, ...] = ()
    worker_volumes: tuple[Volume, ...] = ()
    group: str = ""
    jupyter: str = ""
    tasks: int = 0
    member_of: str = ""
    leftover_of: str = ""

    @property
    def takes_cluster(self) -> bool:
        """True when other billed things (workers, the group) are deleted with the instance."""
        return bool(self.workers or self.group)

    def cluster_text(self) -> str:
        """What goes with the instance, in one paragraph ("" when nothing does)."""
        name = self.instance.name
        rest = []
        if self.workers:
            rest.append(f"{plural(len(self.workers), 'worker instance')} ({names(self.workers)})")
        if self.worker_volumes:
            rest.append(f"their {plural(len(self.worker_volumes), 'volume')} "
                        f"({_volumes_phrase(self.worker_volumes, self.workers)})")
        if self.group:
            rest.append(f"the security group {self.group}")
        if self.leftover_of:
            if not rest:
                return ""
            return (f"{name} is left over from the Dask cluster of {self.leftover_of}, whose head is deleted: "
                    + ", ".join(rest) + " go with it.")
        if self.takes_cluster:
            tasks = (f" {plural(self.tasks, 'task')} {'is' if self.tasks == 1 else 'are'} running and will be lost."
                     if self.tasks else "")
            return (f"{name} heads a Dask cluster: deleting it deletes the cluster too — " + ", ".join(rest)
                    + ", and its dashboard tunnel." + tasks)
        if self.member_of:
            return (f"{name} is a worker of the Dask cluster on {self.member_of}: the cluster loses it (its tasks "
                    f"are computed again elsewhere). To remove a worker gracefully, scale the cluster down instead "
                    f"(`-` on the cluster screen, or `{command('cluster', 'scale', self.member_of)} N`).")
        return ""

    def volume_fates(self, delete_volumes: bool) -> list[tuple[str, bool]]:
        """(`boot volume of NAME, 16 GB`, deleted?) for each of the instance's own volumes."""
        return [(volume_phrase(v, self.instance.name), delete_volumes) for v in self.volumes]

    def prompt(self, delete_volumes: bool) -> str:
        """The whole warning, for a terminal."""
        inst = self.instance
        lines = [f"Delete instance {inst.name} ({inst.status}, {inst.ip or 'no IP'}): anything not on a kept volume "
                 "is lost."]
        if self.jupyter:
            lines.append(self.jupyter)
        if self.volumes:
            them = "it" if len(self.volumes) == 1 else "them"
            fate = "DELETED" if delete_volumes else f"kept (use --delete-volumes to delete {them})"
            lines.append(f"Its {plural(len(self.volumes), 'volume')} "
                         f"({'; '.join(p for p, _ in self.volume_fates(delete_volumes))}) will be {fate}.")
        else:
            lines.append("It has no volumes.")
        if cluster := self.cluster_text():
            lines.append(cluster)
        return "\n".join(lines)


def cluster_delete_text(head: str, workers: Sequence[Instance], volumes: Sequence[Volume], group: str,
                        tasks: int, jupyter: bool) -> str:
    """The warning before deleting the cluster headed by `head` (the head itself stays)."""
    what = [f"{plural(len(workers), 'worker instance')}" + (f" ({names(workers)})" if workers else "")]
    if volumes:
        what.append(f"their {plural(len(volumes), 'volume')} ({_volumes_phrase(volumes, workers)})")
    if group:
        what.append(f"the security group {group}")
    stays = f"{head} stays" + (" and its Jupyter keeps running" if jupyter else "")
    busy = f". {plural(tasks, 'task')} {'is' if tasks == 1 else 'are'} running and will be lost" if tasks else ""
    return f"Delete the Dask cluster on {head}: " + ", ".join(what) + f"; {stays}{busy}"


def scale_down_text(victims: Sequence[Instance], volumes: Sequence[Volume]) -> str:
    """The warning before retiring and deleting worker instances."""
    theirs = [v for w in victims for v in volumes_of(w, volumes)]
    held = f", with their {plural(len(theirs), 'volume')} ({_volumes_phrase(theirs, victims)})" if theirs else ""
    return (f"Retire and delete {plural(len(victims), 'worker instance')}: {names(victims)}{held}; the data they "
            "hold moves to the other workers first")
