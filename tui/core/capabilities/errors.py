"""How core failures reach the front ends through a capability: one `ManagerError` line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tui.core.autostop.service import AutostopError
from tui.core.cloud.base import CloudError
from tui.core.cluster.errors import ClusterCancelled, ClusterError
from tui.core.cluster.status import StatusError
from tui.core.errors import BadInput, Cancelled, ManagerError
from tui.core.models import Instance


@contextlib.contextmanager
def as_manager_error() -> Iterator[None]:
    """Cluster and cloud failures reach the front ends as ManagerError (one line: the message and the hint); bad
    input stays `BadInput` (the CLI's exit 2)."""
    try:
        yield
    except BadInput:
        raise
    except ClusterCancelled as exc:
        raise Cancelled(str(exc)) from exc
    except (ClusterError, CloudError, StatusError, AutostopError) as exc:
        raise ManagerError(str(exc)) from exc


def ref(head: Instance | str) -> str:
    return head if isinstance(head, str) else head.id
