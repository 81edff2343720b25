"""Remote jobs: one async worker per (action, instance) — setup, Jupyter, tunnels, the shell, cluster work, a
delete — whose text or error becomes a notification. A second press says the job runs instead of starting another;
setups and cluster work are cancelled by action (Ctrl+X, Ctrl+C)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.ui.areas.base import Owner, RemoteJob, api, base, msg

if TYPE_CHECKING:
    from tui.core.api import Engine
    from tui.core.models import Instance
    from tui.ui.app import CadesApp


class RemoteJobs(Owner):
    def __init__(self, app: CadesApp) -> None:
        super().__init__(app)
        self.running: set[tuple[str, str]] = set()  # (action, instance id) of remote jobs in progress

    def run(self, action: str, job: RemoteJob, inst: Instance | None = None) -> None:
        """`job` for the (selected) instance in an async worker; its text or error becomes a notification. One job
        per action and instance at a time (a second press says so instead of cancelling the first)."""
        inst = inst or self.selected_instance()
        engine = self.engine
        if inst is None or engine is None:
            return
        key = (action, inst.id)
        if key in self.running:
            self.notify(f"{action.capitalize()} is already running on {inst.name}.", severity="warning")
            return
        self.running.add(key)
        self.app.run_worker(self._remote_job(engine, action, inst, job), group=f"{action}:{inst.id}",
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
            self.running.discard((action, inst.id))

    def running_on(self, action: str) -> list[str]:
        """The ids of the instances where `action` runs now."""
        return [iid for done, iid in self.running if done == action]

    def cancel(self, action: str) -> list[str]:
        """Cancel every `action` job (its SSH session ends, so does its command on the VM); their instance ids."""
        ids = self.running_on(action)
        for iid in ids:
            self.app.workers.cancel_group(self.app, f"{action}:{iid}")
            self.running.discard((action, iid))
        return ids

    def on_remote_result(self, message: msg.RemoteResult) -> None:
        title = f"{message.action.capitalize()} · {message.target}"
        if message.ok:
            self.notify(message.text, title=title, timeout=8)
        else:
            self.notify(message.text, title=f"{title} failed", severity="error", timeout=12)
