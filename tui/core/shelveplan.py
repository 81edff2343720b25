"""What a shelve ends and keeps, and what an unshelve brought back, in words: pure (models only), so the app's
dialog and the CLI's prompt say the same facts the same way. The facts are gathered by `tui.core.shelving`."""

from __future__ import annotations

from dataclasses import dataclass

from tui.core.cluster.deletion import volume_phrase
from tui.core.config import Settings
from tui.core.cost import best_action, per_hour
from tui.core.models import Instance, Quota, Volume
from tui.core.units import plural, ram


@dataclass(frozen=True, slots=True)
class ShelvePlan:
    """What shelving `instance` ends and keeps. `busy`: the busy kernels' names, or why they could not be listed."""

    instance: Instance
    jupyter: bool = False
    busy: tuple[str, ...] | str = ()
    workers: tuple[Instance, ...] = ()
    tasks: int = 0
    member_of: str = ""
    volumes: tuple[Volume, ...] = ()
    saves: str = ""  # "2 SU/h" by the profile's cost model, "" without one

    def text(self) -> str:
        """The confirmation's body: what is lost, what is kept, and how to come back."""
        name = self.instance.name
        parts = [f"Shelving {name} shuts it down and frees it from its host: every running program ends"]
        if self.jupyter:
            if isinstance(self.busy, str):
                parts.append(f"Jupyter and its kernels end (whether kernels are busy is unknown: {self.busy}); "
                             "everything in their memory and unsaved notebooks is lost")
            elif self.busy:
                parts.append(f"Jupyter and its kernels end — {plural(len(self.busy), 'kernel')} "
                             f"{'is' if len(self.busy) == 1 else 'are'} busy running code ({', '.join(self.busy)}): "
                             "its work and unsaved notebooks are lost")
            else:
                parts.append("Jupyter and its kernels end (unsaved notebooks are lost)")
        if self.workers:
            tasks = f", {plural(self.tasks, 'task')} running now lost" if self.tasks else ""
            keep = "keeps" if len(self.workers) == 1 else "keep"
            parts.append(f"the Dask cluster it heads loses its scheduler ({', '.join(w.name for w in self.workers)} "
                         f"{keep} running and billing{tasks}); its sessions restart on unshelve")
        if self.member_of:
            parts.append(f"it is a worker of the Dask cluster on {self.member_of}, which loses it")
        text = "; ".join(parts) + "."
        kept = "Its disk is kept"
        if self.volumes:
            which = f"its {plural(len(self.volumes), 'volume')} stay" if len(self.volumes) > 1 else "its volume stays"
            kept += f" and {which} attached (" + "; ".join(volume_phrase(v, name) for v in self.volumes) + ")"
        again = "; Jupyter starts again, its tunnel on the same port" if self.jupyter else ""
        text += f" {kept}. Unshelve brings it back as it was on disk (a few minutes{again})"
        if self.saves:
            text += f"; meanwhile it saves {self.saves}"
        return text + ". Once offloaded its cores and RAM are free for others: coming back needs them free again."


@dataclass(frozen=True, slots=True)
class Unshelved:
    """An unshelve done: the instance, and what came back with it."""

    instance: Instance
    jupyter_port: int = 0  # the local port of Jupyter's tunnel again, 0 when Jupyter was not running before
    jupyter_error: str = ""
    clusters: tuple[str, ...] = ()


def quota_refusal(inst: Instance, quota: Quota) -> str:
    """`unshelving vm1 needs 2 cores and 8 GiB RAM; free now: 1 core and 4 GiB RAM (15 of 16 cores, 4 of 8 GiB
    in use)`: the numbers in the app's units."""
    free_ram = f"{ram(quota.ram_mb_free)} RAM" if quota.ram_mb_free > 0 else "no RAM"
    return (f"unshelving {inst.name} needs {plural(inst.vcpus, 'core')} and {ram(inst.ram_mb)} RAM; free now: "
            f"{plural(quota.cores_free, 'core')} and {free_ram} ({quota.cores_used} of "
            f"{quota.cores_limit} cores, {ram(quota.ram_mb_used)} of {ram(quota.ram_mb_limit)} in use)")


def nudge_choice(settings: Settings, inst: Instance) -> tuple[str, str]:
    """(action, "saves 2 SU/h") the cost model picks for an idle instance; ("", "") without a model or saving."""
    model = settings.cost_model
    if model is None:
        return "", ""
    action, saves = best_action(model, inst)
    return (action, f"saves {per_hour(saves, model.unit)}") if action else ("", "")


