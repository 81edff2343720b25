"""The idle round of Dask clusters: how long each cluster's workers have had no task, and which nudge
(`IdleNudge`: scale down to 0, then delete the cluster) is due — each tier once until the workers are busy again."""

from __future__ import annotations

from tui.core.config import ClusterSettings
from tui.core.events import IdleNudge
from tui.core.jupyter.idle import Tier
from tui.core.models import ClusterStatus, Instance


class IdleClock:
    """When each head's workers were last seen without tasks, and the tier each was last nudged with."""

    def __init__(self) -> None:
        self._idle_since: dict[str, float] = {}  # head id -> when its workers were last seen without tasks
        self._nudged: dict[str, Tier] = {}

    def nudge(self, head: Instance, status: ClusterStatus, cs: ClusterSettings, now: float) -> IdleNudge | None:
        """The nudge due now for the scheduler's view `status` (None while busy, below the thresholds, or when
        that tier was already nudged). A first look or a busy worker starts the clock again."""
        if any(w.processing for w in status.workers) or head.id not in self._idle_since:
            self._idle_since[head.id] = now
            self._nudged.pop(head.id, None)
            return None
        idle_h = (now - self._idle_since[head.id]) / 3600
        tier = (Tier.DELETE if idle_h >= cs.idle_delete_hours else
                Tier.RESIZE if idle_h >= cs.idle_scale_down_hours else None)
        if tier is None or self._nudged.get(head.id) is tier:
            return None
        self._nudged[head.id] = tier
        what = ("delete the cluster (the head and its Jupyter stay)" if tier is Tier.DELETE
                else "scale it down to 0 workers")
        return IdleNudge(head.id, tier, "k", f"The Dask cluster on {head.name} has had no task for "
                                             f"{idle_h:.1f} hours: {what}")

    def forget(self, head_id: str) -> None:
        """The cluster is gone: its clock stops."""
        self._idle_since.pop(head_id, None)
