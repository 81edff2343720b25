"""Owners driven alone, without the app: each is a plain object given the App, so a stand-in for the App (a fake,
`FakeApp`: it records timers, workers, messages and what the user is told) is all one needs."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from tui.core import api
from tui.core.cloud.base import CloudError, NoCloudConfigured
from tui.core.config import Settings, UISettings
from tui.core.events import ClusterState, JupyterState, LogLines, Polled
from tui.core.live import Fleet
from tui.core.models import ClusterStatus, Instance, Quota
from tui.ui import core_messages as cm
from tui.ui import messages as msg
from tui.ui.areas.cluster import Clusters
from tui.ui.areas.jobs import RemoteJobs
from tui.ui.areas.jupyter import Jupyter, mask_token
from tui.ui.areas.leave import QUIT_ASK, Leave
from tui.ui.areas.polling import MAX_BACKOFF_S, UNFOCUSED_S, Polling
from tui.ui.areas.remote import Remote
from tui.ui.areas.setup import Setup


class FakeTimer:
    def __init__(self, delay: float, callback: Any) -> None:
        self.delay, self.callback, self.stopped = delay, callback, False

    def stop(self) -> None:
        self.stopped = True

    def fire(self) -> None:
        assert not self.stopped
        self.callback()


class FakeApp:
    """Stands in for CadesApp: what the owners read of it, and records of what they asked of it."""

    def __init__(self, refresh_s: float = 5.0) -> None:
        self.settings = replace(Settings(cloud="sandbox"), ui=UISettings(refresh_s=refresh_s))
        self.engine: Any = None
        self.fleet = Fleet()
        self.app_focus = True
        self.built = True
        self.quitting = False
        self.sub_title = ""
        self.timers: list[FakeTimer] = []
        self.started: list[tuple[Any, dict[str, Any]]] = []  # (work, run_worker's keywords)
        self.cancelled: list[str] = []
        self.posted: list[Any] = []
        self.told: list[tuple[str, str]] = []  # (text, severity)
        self.banner = SimpleNamespace(display=False, update=lambda text: None)
        self.instances_pane = SimpleNamespace(waiting=lambda text: None, table=SimpleNamespace(selected=None))
        self.workers = SimpleNamespace(cancel_group=lambda node, group: self.cancelled.append(group))

    def set_timer(self, delay: float, callback: Any) -> FakeTimer:
        self.timers.append(FakeTimer(delay, callback))
        return self.timers[-1]

    def run_worker(self, work: Any, **kwargs: Any) -> None:
        self.started.append((work, kwargs))

    def post_message(self, message: Any) -> bool:
        self.posted.append(message)
        return True

    def notify(self, text: str, *, title: str = "", severity: str = "information", timeout: float | None = None
               ) -> None:
        self.told.append((text, severity))

    def names(self) -> list[str]:
        return [kwargs["name"] for _, kwargs in self.started]


def failed(text: str = "no route to the cloud") -> msg.CloudFailed:
    return msg.CloudFailed(CloudError(text, "check the VPN"))


# -- polling ---------------------------------------------------------------------------------------------------------
def test_polling_backs_off_while_the_cloud_fails_one_connect_at_a_time_and_says_it_once() -> None:
    app = FakeApp(refresh_s=5.0)
    polling = Polling(app)
    polling.start()  # no engine yet: connect
    assert polling.busy and app.names() == ["connect to the cloud"]
    waits = []
    for _ in range(6):
        watchdog = polling.watchdog
        polling.on_cloud_failed(failed())
        assert watchdog is not None and watchdog.stopped and not polling.busy  # the watchdog ends with the try
        assert polling.timer is not None
        waits.append(polling.timer.delay)
        polling.timer.fire()  # the next try
    assert waits == [10.0, 20.0, 40.0, MAX_BACKOFF_S, MAX_BACKOFF_S, MAX_BACKOFF_S]
    assert app.names() == ["connect to the cloud"] * 7
    assert polling.state == "failed" and app.banner.display
    assert [s for _, s in app.told] == ["error"]  # said once, not on every retry
    polling.on_cloud_failed(msg.CloudFailed(NoCloudConfigured("no clouds.yaml")))
    assert polling.state == "unconfigured" and "no cloud configured" in app.sub_title


def test_polling_after_an_answer_polls_at_the_refresh_rate_again_and_reads_what_changed() -> None:
    app = FakeApp(refresh_s=5.0)
    app.remote = SimpleNamespace(after_poll=lambda polled: app.posted.append(("after poll", polled)))
    app.engine = object()  # built: the next try is a poll
    polling = Polling(app)
    polling.state = "failed"
    polling.delay = 40.0
    polling.tick()
    polled = Polled((), Quota(0, 0, 0, 0, 0, 0), ())
    polling.on_polled(cm.PolledMessage(polled))
    assert polling.state == "connected" and polling.delay == 5.0 and polling.timer is not None
    assert polling.timer.delay == 5.0 and ("after poll", polled) in app.posted
    assert app.told[0][0].startswith("Connected to sandbox again")


def test_polling_refresh_never_overlaps_polls_and_the_unfocused_terminal_polls_less() -> None:
    app = FakeApp(refresh_s=5.0)
    app.engine = object()
    polling = Polling(app)
    polling.start()
    assert app.names() == ["poll the cloud"] and polling.busy
    polling.refresh()  # F5 while a poll runs: again right after it, listing every server
    assert app.names() == ["poll the cloud"] and polling.again and polling.full
    polling.rearm()  # the poll ended
    assert app.names() == ["poll the cloud"] * 2 and not polling.again and not polling.full
    app.app_focus = False
    polling.rearm()
    assert polling.timer is not None and polling.timer.delay == UNFOCUSED_S
    waiting = polling.timer
    polling.on_app_focus()  # back in front: poll now
    assert waiting.stopped and app.names() == ["poll the cloud"] * 3
    polling.rearm()
    app.app_focus = True
    polling.on_app_blur()
    assert polling.timer.delay == UNFOCUSED_S
    app.quitting = True
    timers = len(app.timers)
    polling.rearm()  # quitting: nothing re-armed
    assert len(app.timers) == timers


def test_polling_refresh_before_the_tables_are_built_only_asks_for_a_full_listing() -> None:
    app = FakeApp()
    app.built = False
    polling = Polling(app)
    polling.refresh()
    assert polling.full and app.started == [] and app.timers == []


# -- remote jobs -----------------------------------------------------------------------------------------------------
async def test_remote_jobs_run_one_job_per_action_and_instance_and_say_each_outcome() -> None:
    app = FakeApp()
    app.engine = object()
    jobs = RemoteJobs(app)
    vm = Instance("i-1", "vm1", "ACTIVE")
    release = asyncio.Event()

    async def setup(engine: object, inst: Instance) -> str:
        await release.wait()
        return f"set up {inst.name}"

    jobs.run("setup", setup, vm)
    jobs.run("setup", setup, vm)  # a second press while it runs
    assert app.names() == ["setup vm1"] and app.told == [("Setup is already running on vm1.", "warning")]
    assert jobs.running_on("setup") == ["i-1"]
    work, kwargs = app.started[0]
    assert kwargs["group"] == "setup:i-1"
    task = asyncio.ensure_future(work)
    release.set()
    await task
    assert app.posted == [msg.RemoteResult("setup", "vm1", "set up vm1")] and jobs.running == set()

    async def refused(engine: object, inst: Instance) -> str:
        raise api.ManagerError("the key was refused")

    async def declined(engine: object, inst: Instance) -> str:
        raise api.Cancelled("nothing deleted")

    for action, job in (("shell", refused), ("delete", declined)):
        jobs.run(action, job, vm)
        await app.started[-1][0]
    assert app.posted[1:] == [msg.RemoteResult("shell", "vm1", "the key was refused", ok=False),
                              msg.RemoteResult("delete", "vm1", "Nothing deleted.")]


def test_remote_jobs_cancel_every_job_of_an_action_and_only_those() -> None:
    app = FakeApp()
    jobs = RemoteJobs(app)
    jobs.running |= {("setup", "i-1"), ("setup", "i-2"), ("cluster", "i-3")}
    assert sorted(jobs.cancel("setup")) == ["i-1", "i-2"]
    assert sorted(app.cancelled) == ["setup:i-1", "setup:i-2"] and jobs.running == {("cluster", "i-3")}
    assert jobs.cancel("setup") == []


# -- clusters --------------------------------------------------------------------------------------------------------
def test_clusters_remember_which_heads_answered_for_the_quit_message() -> None:
    app = FakeApp()
    heads = (Instance("h-1", "head", "ACTIVE"), Instance("h-2", "other", "ACTIVE"))
    app.fleet.apply(Polled(heads, Quota(0, 0, 0, 0, 0, 0), ()))
    clusters = Clusters(app)
    up = ClusterStatus("tls://10.0.0.5:8786", "127.0.0.1:8787")
    clusters.on_cluster_state(cm.ClusterStateMessage(ClusterState("h-1", up)))
    clusters.on_cluster_state(cm.ClusterStateMessage(ClusterState("h-2", up)))
    clusters.on_cluster_state(cm.ClusterStateMessage(
        ClusterState("h-2", None, problem="the scheduler does not answer")))
    assert clusters.running() == ["head"]
    app.jobs = RemoteJobs(app)
    app.jobs.running.add(("cluster", "h-2"))
    assert clusters.running_work() == ["other"]


# -- leaving ---------------------------------------------------------------------------------------------------------
def test_ctrl_c_copies_then_cancels_setups_then_cluster_work_then_asks_to_quit() -> None:
    app = FakeApp()
    app.fleet.apply(Polled((Instance("i-1", "vm1", "ACTIVE"), Instance("h-1", "head", "ACTIVE")),
                           Quota(0, 0, 0, 0, 0, 0), ()))
    copied: list[str] = []
    app.copy_to_clipboard = copied.append
    app.focused = SimpleNamespace(selected_text="a line of the log")
    app.screen = SimpleNamespace(id=None, get_selected_text=lambda: "")
    app.setup_pane = SimpleNamespace(cancelled=lambda name, at: app.posted.append(("setup cancelled", name)))
    app.jobs, app.setup, app.clusters = RemoteJobs(app), Setup(app), Clusters(app)
    app.jobs.running |= {("setup", "i-1"), ("cluster", "h-1")}
    leave = Leave(app)
    leave.interrupt()
    assert copied == ["a line of the log"] and app.cancelled == []  # the selection first
    app.focused = None
    leave.interrupt()
    assert app.cancelled == ["setup:i-1"] and ("setup cancelled", "vm1") in app.posted
    leave.interrupt()
    assert app.cancelled == ["setup:i-1", "cluster:h-1"] and app.jobs.running == set()
    leave.interrupt()  # nothing runs: ask to quit (a dialog, in a worker)
    assert app.names() == ["quit"]
    closed: list[bool] = []
    app.screen = SimpleNamespace(id=QUIT_ASK, get_selected_text=lambda: "", dismiss=closed.append)
    leave.interrupt()  # Ctrl+C on that question quits
    assert closed == [True] and app.names() == ["quit"]


# -- the instances' remote life, Jupyter -----------------------------------------------------------------------------
def test_remote_reads_load_after_each_poll_reattaches_once_and_forgets_deleted_instances() -> None:
    app = FakeApp()
    app.engine = object()
    remote = Remote(app)
    vm1, vm2 = Instance("i-1", "vm1", "ACTIVE"), Instance("i-2", "vm2", "ACTIVE")
    app.fleet.apply(Polled((vm1, vm2), Quota(0, 0, 0, 0, 0, 0), ()))
    remote.after_poll(Polled((vm1, vm2), Quota(0, 0, 0, 0, 0, 0), ()))
    assert app.names() == ["read load and memory", "reattach to running Jupyter servers"]
    remote.after_poll(Polled((vm1,), Quota(0, 0, 0, 0, 0, 0), ()))  # vm2 was deleted elsewhere
    assert app.names()[2:] == ["forget a deleted instance", "read load and memory"]  # no second reattach
    for work, _ in app.started:
        work().close()  # (not run here: each is the engine's call)


def test_jupyter_says_where_it_answers_and_feeds_only_its_own_log_view() -> None:
    app = FakeApp()
    app.fleet.apply(Polled((Instance("i-1", "vm1", "ACTIVE"),), Quota(0, 0, 0, 0, 0, 0), ()))
    jupyter = Jupyter(app)
    fed: list[list[str]] = []
    jupyter.log_screen = SimpleNamespace(is_attached=True, instance_id="i-1", add=fed.append,
                                         server_state=lambda state: fed.append([state]))
    jupyter.on_jupyter_state(cm.JupyterStateMessage(
        JupyterState("i-1", "running", "http://127.0.0.1:18888/lab", 18888)))
    jupyter.on_jupyter_state(cm.JupyterStateMessage(JupyterState("i-1", "error", error="port 8888 is taken")))
    assert app.told == [("Jupyter answers at http://127.0.0.1:18888/lab\nPress o to open it (the token URL is "
                         "copied too).", "information"), ("port 8888 is taken", "error")]
    jupyter.on_log_lines(cm.LogLinesMessage(LogLines("i-1", ("[I] serving",))))
    jupyter.on_log_lines(cm.LogLinesMessage(LogLines("i-2", ("[I] another server",))))
    assert fed == [["running"], ["error"], ["[I] serving"]]
    assert mask_token("http://127.0.0.1:1/lab?token=abcdef123456") == "http://127.0.0.1:1/lab?token=abcd…"
