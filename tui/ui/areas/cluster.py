"""A Dask cluster headed by the selected instance: the cluster screen (`k`), create, grow/shrink by one worker,
the dashboard in the browser, delete (typed confirmation). Progress lines go to the Setup log pane; the screen
shows the scheduler's view, asked for every few seconds while it is open (a timer re-armed after each answer)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.ui.areas.base import Owner, RemoteJob

if TYPE_CHECKING:
    from tui.core.api import Engine
    from tui.core.models import Instance
    from tui.ui import core_messages as cm
    from tui.ui.app import CadesApp
    from tui.ui.screens.cluster import ClusterScreen

CLUSTER_REFRESH_S = 3.0


class Clusters(Owner):
    def __init__(self, app: CadesApp) -> None:
        super().__init__(app)
        self.screen: ClusterScreen | None = None  # the open cluster screen
        self.answered: set[str] = set()  # heads whose scheduler answered last time it was asked
        self.leftovers_offered: set[str] = set()  # heads whose leftovers were offered for deletion already

    def show(self) -> None:
        inst = self.selected_instance()
        if inst is None:
            return
        from tui.ui.screens.cluster import ClusterScreen

        screen = self.screen = ClusterScreen(inst.id, inst.name)

        def closed(_: object) -> None:
            self.screen = None

        self.app.push_screen(screen, closed)
        self._ask_cluster_status(inst)

    def _cluster_head(self) -> Instance | None:
        """The open cluster screen's head, else the selected instance."""
        screen = self.screen
        if screen is not None:
            live = self.fleet.get(screen.head_id)
            if live is not None and live.instance is not None:
                return live.instance
        return self.selected_instance()

    def _ask_cluster_status(self, inst: Instance) -> None:
        """Ask the scheduler now; while the screen stays open, again after the answer (never overlapping)."""
        engine = self.engine
        if engine is None:
            return

        async def ask() -> None:
            try:
                await engine.cluster.status(inst)  # the answer comes as a ClusterState event
            finally:
                screen = self.screen
                if screen is not None and screen.head_id == inst.id and not self.app.quitting:
                    self.app.set_timer(CLUSTER_REFRESH_S, lambda: self._ask_cluster_status(inst))

        self.app.run_worker(ask(), group=f"cluster-status:{inst.id}", exclusive=True, exit_on_error=False,
                        name=f"ask the cluster of {inst.name}")

    def _workers_now(self, inst: Instance) -> int:
        screen = self.screen
        state = screen.state if screen is not None else None
        if state is None or state.status is None:
            return 0
        return sum(1 for name in state.status.names if name != inst.name)

    def create(self) -> None:
        async def job(engine: Engine, inst: Instance) -> str | None:
            from tui.ui.screens.cluster_create import WorkerCount

            n = await self.app.push_screen_wait(WorkerCount(inst.name, *self._worker_room(inst)))
            if n is None:
                return "Cluster creation cancelled; nothing changed."
            self.notify(f"Creating a Dask cluster on {inst.name} with {n} worker instance(s); progress in the "
                        "Setup log pane.", title="Cluster")
            summary = await engine.cluster.create(inst, n)
            failed = f" {len(summary.failed)} could not join: {'; '.join(summary.failed)}." if summary.failed else ""
            return (f"Dask cluster on {inst.name}: {len(summary.status.workers)} workers connected.{failed} "
                    "In a notebook on it, Client() connects.")

        self._cluster_job("cluster", job)

    def _worker_room(self, head: Instance) -> tuple[int, int, int, int]:
        """For the worker-count prompt: (the profile's number, the head's worker instances already there, how many
        more the remaining quota holds, the least number: 0 when the head runs a worker too)."""
        from tui.core.cluster.plan import MAX_WORKERS, worker_numbers, workers_that_fit

        cs = self.settings.cluster
        names = [i.name for i in self.fleet.instances() if i.status in ("ACTIVE", "BUILD")]
        quota = self.fleet.quota
        fit = workers_that_fit(list(self.fleet.flavors), quota, cs.flavor) if quota is not None else MAX_WORKERS
        return cs.workers, len(worker_numbers(head.name, names)), fit, 0 if cs.head_worker else 1

    def grow(self) -> None:
        async def job(engine: Engine, inst: Instance) -> str | None:
            from tui.core.hints import command

            summary = await engine.cluster.scale(inst, self._workers_now(inst) + 1)
            hint = command("cluster", "scale", inst.name, "N", "--from-image")
            return (f"Cluster on {inst.name}: {len(summary.status.workers)} workers connected. New workers can "
                    f"start from {inst.name}'s frozen image with nothing to install: `{hint}`.")

        self._cluster_job("cluster", job)

    def shrink(self) -> None:
        async def job(engine: Engine, inst: Instance) -> str | None:
            from tui.ui.screens.confirm import Confirm

            async def confirm(text: str) -> bool:
                answer = await self.app.push_screen_wait(Confirm(
                    f"Remove a worker from the cluster on {inst.name}?", text, "Retire and delete", danger=True))
                return bool(answer)

            n = self._workers_now(inst)
            if n == 0:
                return "The cluster has no worker instance to remove."
            summary = await engine.cluster.scale(inst, n - 1, confirm)
            return f"Retired and deleted {', '.join(summary.removed)}; {len(summary.status.workers)} workers remain."

        self._cluster_job("cluster", job)

    def dashboard(self) -> None:
        async def job(engine: Engine, inst: Instance) -> str | None:
            import asyncio
            import webbrowser

            url = await engine.cluster.dashboard(inst)
            self.app.copy_to_clipboard(url)
            opened = await asyncio.to_thread(webbrowser.open, url)
            return f"Dask dashboard: {url} (copied){'' if opened else ' — no browser here: open it in yours'}"

        self._cluster_job("dashboard", job)

    def delete(self) -> None:
        async def job(engine: Engine, inst: Instance) -> str | None:
            from tui.ui.screens.confirm import TypedConfirm

            async def confirm(text: str) -> bool:
                answer = await self.app.push_screen_wait(TypedConfirm(
                    f"Delete the Dask cluster on {inst.name}?", text, inst.name))
                return bool(answer)

            deleted = await engine.cluster.delete(inst, confirm)
            live = self.fleet.get(inst.id)
            jupyter = live is not None and live.jupyter is not None and live.jupyter.state == "running"
            return (f"Cluster on {inst.name} deleted ({', '.join(deleted) or 'no worker instances'}); "
                    f"{inst.name} stays" + (" and its Jupyter keeps running." if jupyter else "."))

        self._cluster_job("cluster", job)

    def check_leftovers(self) -> None:
        """Look for what deleted Dask clusters left (workers whose head is gone, a group with no members): they
        still count against the quota, so offer to delete them (once per head in a session; Cancel has the focus)."""
        engine = self.engine
        if engine is None or self.app.quitting:
            return

        async def look() -> None:
            from tui.core.api import ManagerError  # (not before the first frame: it loads the models)
            from tui.core.hints import command
            from tui.ui.screens.confirm import Confirm

            try:
                left = [x for x in await engine.cluster.leftovers() if x.head not in self.leftovers_offered]
            except ManagerError as exc:
                self.notify(f"Could not look for what deleted clusters left: {exc}", severity="warning")
                return
            if not left or self.app.quitting:
                return
            self.leftovers_offered.update(x.head for x in left)
            text = "\n\n".join(x.text() for x in left)
            if not await self.app.push_screen_wait(Confirm(
                    "Left over from deleted Dask clusters, still billing", f"{text}\n\nDelete all of it?",
                    "Delete them", danger=True)):
                workers = [w.name for x in left for w in x.workers]
                how = f"ctrl+d on {workers[0]} deletes it with the rest, or " if workers else ""
                self.notify(f"Kept. {how}`{command('cluster', 'delete')}` deletes all of it.", title="Left over",
                            severity="warning", timeout=12)
                return
            try:
                gone = await engine.cluster.delete_leftovers(left)
            except ManagerError as exc:
                self.notify(str(exc), title="Deleting what deleted clusters left failed", severity="error")
            else:
                self.notify(f"Deleted what the cluster(s) of {', '.join(x.head for x in left)} left"
                            + (f": {', '.join(gone)}." if gone else "."), title="Left over")
            self.app.polling.refresh()

        self.app.run_worker(look(), group="cluster-leftovers", exclusive=True, exit_on_error=False,
                        name="look for what deleted clusters left")

    def _cluster_job(self, action: str, job: RemoteJob) -> None:
        inst = self._cluster_head()
        if inst is not None:
            self.app.jobs.run(action, job, inst)

    def cancel_work(self) -> None:
        """Ctrl+C: stop the cluster work running (create, scale, delete) where it is; what exists stays."""
        running = self.app.jobs.cancel("cluster")
        names = ", ".join(self.instance_name(iid) for iid in running)
        self.notify(f"Cluster work on {names} cancelled: instances already launched and sessions already started "
                    "stay. n on the cluster screen creates again, adopting what exists.", title="Cluster",
                    severity="warning")

    def running_work(self) -> list[str]:
        """Names of the heads with a cluster operation in progress (quitting asks first)."""
        return [self.instance_name(iid) for iid in self.app.jobs.running_on("cluster")]

    # -- what the core says ------------------------------------------------------------------------------------
    def on_cluster_progress(self, message: cm.ClusterProgressMessage) -> None:
        import time

        p = message.event
        pane = self.app.setup_pane
        pane.cluster_line(self.instance_name(p.head_id), p.instance, p.phase, p.message, time.monotonic())
        screen = self.screen
        if screen is not None and screen.head_id == p.head_id:
            screen.progress(p.instance, p.message)

    def running(self) -> list[str]:
        """Heads whose cluster answered when last asked (quitting says they keep running)."""
        return sorted(self.instance_name(iid) for iid in self.answered)

    def on_cluster_state(self, message: cm.ClusterStateMessage) -> None:
        state = message.event
        if state.status is not None:
            self.answered.add(state.head_id)
        else:
            self.answered.discard(state.head_id)
        screen = self.screen
        if screen is not None and screen.head_id == message.event.head_id:
            screen.show(message.event)
