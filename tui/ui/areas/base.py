"""What every area shares: the app's state it reads (settings, the engine, the live state, the panes) and the two
ways it runs work — a blocking cloud call in a thread worker, a remote job in an async worker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from tui.ui.lazy import lazy

if TYPE_CHECKING:
    from textual.app import App

    from tui.core import api
    from tui.core.api import Engine
    from tui.core.cloud import base
    from tui.core.config import Settings
    from tui.core.live import Fleet
    from tui.core.models import Instance
    from tui.ui import messages as msg
    from tui.ui.widgets.panes import FlavorsPane, InstancesPane, QuotaBar, SetupPane, TunnelsPane

    _AppBase = App[None]
else:  # at run time the areas are mixins of CadesApp (a Textual App)
    _AppBase = object
    msg = lazy("tui.ui.messages")
    base = lazy("tui.core.cloud.base")
    api = lazy("tui.core.api")

__all__ = ["Area", "RemoteJob", "api", "base", "msg"]

RemoteJob = Callable[["Engine", "Instance"], Awaitable[str | None]]


class Area(_AppBase):
    """Declared here, set by `CadesApp.__init__` / `on_mount`."""

    settings: Settings
    engine: Engine | None
    if TYPE_CHECKING:
        @property
        def fleet(self) -> Fleet: ...  # made on first use (`CadesApp.fleet`)

    clock: Callable[[], datetime]
    _instances_pane: InstancesPane
    _flavors_pane: FlavorsPane
    _setup_pane: SetupPane
    _tunnels_pane: TunnelsPane
    _quota_bar: QuotaBar
    _remote_jobs: set[tuple[str, str]]
    _quitting: bool

    # -- what is selected -----------------------------------------------------------------------------------
    def selected_instance(self) -> Instance | None:
        """The instance under the Instances cursor; says what to do when there is none."""
        if self.engine is None:
            self.notify("Not connected to the cloud yet.", severity="warning")
            return None
        inst = self._instances_pane.table.selected
        if inst is None:
            self.notify("Select an instance first (Instances pane, arrow keys).", severity="warning")
        return inst

    def instance_name(self, instance_id: str) -> str:
        return self.fleet.name(instance_id)

    # -- running work --------------------------------------------------------------------------------------------
    def run_cloud(self, action: str, target: str, call: Callable[[Engine], Instance | None],
                  describe: Callable[[Instance | None], str], group: str) -> None:
        """One blocking cloud call in a thread worker, then ActionDone or ActionFailed (an unexpected error is
        the worker's ERROR state: the app's one handler shows it)."""
        engine = self.engine
        assert engine is not None

        def work() -> None:
            try:
                result = call(engine)
            except base.CloudError as exc:
                self.post_message(msg.ActionFailed(action, target, exc))
            else:
                self.post_message(msg.ActionDone(action, target, describe(result), result))

        self.run_worker(work, thread=True, group=group, exit_on_error=False, name=f"{action} {target}")

    def run_remote(self, action: str, job: RemoteJob, inst: Instance | None = None) -> None:
        """`job` for the (selected) instance in an async worker; its text or error becomes a notification. One job
        per action and instance at a time (a second press says so instead of cancelling the first)."""
        inst = inst or self.selected_instance()
        engine = self.engine
        if inst is None or engine is None:
            return
        key = (action, inst.id)
        if key in self._remote_jobs:
            self.notify(f"{action.capitalize()} is already running on {inst.name}.", severity="warning")
            return
        self._remote_jobs.add(key)
        self.run_worker(self._remote_job(engine, action, inst, job), group=f"{action}:{inst.id}",
                        exit_on_error=False, name=f"{action} {inst.name}")

    async def _remote_job(self, engine: Engine, action: str, inst: Instance, job: RemoteJob) -> None:
        try:
            text = await job(engine, inst)
        except base.CloudError as exc:
            self.post_message(msg.RemoteResult(action, inst.name, f"{exc.message}\n{exc.hint}".strip(), ok=False))
        except api.Cancelled as exc:  # the user said no to a confirmation: said so, not as a failure
            self.post_message(msg.RemoteResult(action, inst.name, str(exc).capitalize() + "."))
        except api.ManagerError as exc:
            self.post_message(msg.RemoteResult(action, inst.name, str(exc), ok=False))
        else:
            if text:
                self.post_message(msg.RemoteResult(action, inst.name, text))
        finally:
            self._remote_jobs.discard((action, inst.id))
