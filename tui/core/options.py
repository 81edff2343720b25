"""`ManagerOptions`: the remote manager's knobs beyond the profile, read by the manager and the Jupyter parts it
assembles (`tui.core.jupyter.servers`, `.lifecycle`, `.logfollow`) — kept here, below all of them, so none of those
parts imports the manager back."""

from __future__ import annotations

from dataclasses import dataclass

from tui.core import paths
from tui.core.guide.steps import Step
from tui.core.jupyter.server import PORT_RETRIES, START_TIMEOUT


@dataclass(frozen=True, slots=True)
class ManagerOptions:
    """Knobs beyond the profile. `remote_env` is exported in setup commands (e.g. UV_CACHE_DIR);
    `jupyter_command` replaces `<setup prefix>/bin/jupyter`; `setup_steps` replaces the guide's steps."""

    remote_env: tuple[tuple[str, str], ...] = ()
    jupyter_command: str = ""
    jupyter_logfile: str = paths.JUPYTER_LOGFILE
    port_retries: int = PORT_RETRIES
    start_timeout: float = START_TIMEOUT
    ready_timeout: float = 15.0  # the server answering through a new tunnel
    log_history: int = 200
    setup_steps: tuple[Step, ...] | None = None
