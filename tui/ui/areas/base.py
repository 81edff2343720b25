"""What every owner shares: the App it belongs to (settings, the engine, the live state, the panes), the selected
instance, the blocking cloud call in a thread worker, and `work`, Textual's `@work` for an owner's method.

An owner is a plain object made by `CadesApp.__init__` and reached through it (`app.polling`, `app.jobs`, …): it
owns its state, starts workers on the App (their failures reach the App's one handler) and posts messages to it;
its handlers — called by the App's thin `on_*` methods — are the only places that touch widgets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial, wraps
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from tui.ui.lazy import lazy

if TYPE_CHECKING:
    from textual.message import Message
    from textual.notifications import SeverityLevel

    from tui.core import api
    from tui.core.api import Engine
    from tui.core.cloud import base
    from tui.core.config import Settings
    from tui.core.live import Fleet
    from tui.core.models import Instance
    from tui.ui import messages as msg
    from tui.ui.app import CadesApp
else:
    msg = lazy("tui.ui.messages")
    base = lazy("tui.core.cloud.base")
    api = lazy("tui.core.api")

__all__ = ["Owner", "RemoteJob", "api", "base", "msg", "work"]

RemoteJob = Callable[["Engine", "Instance"], Awaitable[str | None]]

OwnerT = TypeVar("OwnerT", bound="Owner")
P = ParamSpec("P")


Method = Callable[Concatenate[OwnerT, P], object]
Starter = Callable[Concatenate[OwnerT, P], None]


def work(*, group: str, name: str, thread: bool = False, exclusive: bool = False, exit_on_error: bool = False,
         description: str = "") -> Callable[[Method[OwnerT, P]], Starter[OwnerT, P]]:
    """Textual's `@work` for an owner's method: calling it starts a worker on the App, whose one handler
    (`on_worker_state_changed`) shows a failure. `description`: the name, unless given (never the arguments)."""

    def decorate(method: Method[OwnerT, P]) -> Starter[OwnerT, P]:
        @wraps(method)
        def start(self: OwnerT, /, *args: P.args, **kwargs: P.kwargs) -> None:
            self.app.run_worker(partial(method, self, *args, **kwargs), name=name, group=group,
                                description=description or name, exit_on_error=exit_on_error, exclusive=exclusive,
                                thread=thread)

        return start

    return decorate


class Owner:
    """One area of the app's behaviour, given the App it belongs to."""

    def __init__(self, app: CadesApp) -> None:
        self.app = app

    # -- what it reads of the App (set by `CadesApp.__init__`, `on_mount`, the polling owner) ---------------
    @property
    def engine(self) -> Engine | None:
        return self.app.engine

    @property
    def settings(self) -> Settings:
        return self.app.settings

    @property
    def fleet(self) -> Fleet:
        return self.app.fleet

    def post_message(self, message: Message) -> bool:
        return self.app.post_message(message)

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None) -> None:
        self.app.notify(message, title=title, severity=severity, timeout=timeout)

    # -- what is selected -----------------------------------------------------------------------------------
    def selected_instance(self) -> Instance | None:
        """The instance under the Instances cursor; says what to do when there is none."""
        if self.engine is None:
            self.notify("Not connected to the cloud yet.", severity="warning")
            return None
        inst = self.app.instances_pane.table.selected
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

        self.app.run_worker(work, thread=True, group=group, exit_on_error=False, name=f"{action} {target}")
