"""The sandbox's knobs: how long transitions take (Delays) and which faults to inject (Faults)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, fields


@dataclass
class Delays:
    """Seconds each transition takes."""

    build_s: float = 3.0
    resize_s: float = 2.0
    stop_s: float = 1.0
    start_s: float = 1.5
    reboot_s: float = 1.5
    delete_s: float = 1.0
    volume_s: float = 0.5
    shelve_s: float = 2.0  # shelve (power off, snapshot) and shelveOffload
    unshelve_s: float = 2.0
    # Nova's [DEFAULT]shelved_offload_time: 0 offloads a shelved server at once (Nova's default), N > 0 after N
    # seconds, < 0 never. A volume-backed server is offloaded at once whatever it says.
    shelved_offload_time: float = 0.0
    image_s: float = 1.0  # createImage of an image-backed server: queued -> saving -> active

    @classmethod
    def fast(cls) -> Delays:
        return cls(build_s=0.1, resize_s=0.1, stop_s=0.05, start_s=0.05, reboot_s=0.05, delete_s=0.05, volume_s=0.05,
                   shelve_s=0.1, unshelve_s=0.1, image_s=0.1)


@dataclass
class Faults:
    """Test knobs; change them at any time (not persisted)."""

    latency_s: float = 0.0  # added to every request
    error_rate: float = 0.0  # probability of a 500 on an authenticated call
    rate_limit_rate: float = 0.0  # probability of a 429 (Retry-After: 1) on an authenticated call
    fail_next_create: bool = False  # the next server goes to ERROR with a fault
    # Servers whose name matches this fnmatch pattern (e.g. "*-w2") never become ACTIVE: their build ends in
    # `never_active_status`, "BUILD" (stuck, spawning forever) or "ERROR" (Nova's retries-exhausted fault).
    never_active: str = ""
    never_active_status: str = "BUILD"
    console_host_keys: bool = True  # False: console logs omit cloud-init's host-key block (as many real clouds do)
    console_unavailable: bool = False  # True: reading a console log fails (409, as Nova's ConsoleNotAvailable)
    quota: dict[str, int] = field(default_factory=dict)  # overrides of data.DEFAULT_QUOTA

    def set_quota(
        self,
        *,
        ram_mb: int | None = None,
        cores: int | None = None,
        instances: int | None = None,
        gigabytes: int | None = None,
        volumes: int | None = None,
        key_pairs: int | None = None,
        snapshots: int | None = None,
        image_count_total: int | None = None,
    ) -> None:
        """Override project quotas (-1 = unlimited)."""
        values = {
            "ram_mb": ram_mb,
            "cores": cores,
            "instances": instances,
            "gigabytes": gigabytes,
            "volumes": volumes,
            "key_pairs": key_pairs,
            "snapshots": snapshots,
            "image_count_total": image_count_total,
        }
        self.quota.update({k: v for k, v in values.items() if v is not None})

    def blocks_build(self, name: str) -> str | None:
        """ "BUILD" or "ERROR" when `never_active` matches this server name, else None."""
        if self.never_active and fnmatch.fnmatchcase(name, self.never_active):
            if self.never_active_status not in ("BUILD", "ERROR"):
                raise ValueError(f"never_active_status must be BUILD or ERROR, not {self.never_active_status!r}")
            return self.never_active_status
        return None

    def reset(self) -> None:
        """Back to no faults and the default quota."""
        fresh = Faults()
        for f in fields(self):
            setattr(self, f.name, getattr(fresh, f.name))
