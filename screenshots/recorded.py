"""Recorded remote activity, for pictures of the app: a first setup run and a Jupyter server's log as the remote
manager reports them, and a tunnel that has been up a while. The README's screenshots and the UI snapshot tests
show these (a real run needs a VM with PyPI access, and its times and versions differ each time).

Test data, so not in the package: `screenshots/make_screenshots.py` imports it from its own directory (`recorded`),
the UI snapshot tests as `screenshots.recorded` (the repository's root is on sys.path, as for `tests._support`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from tui.core.events import (
    ClusterProgress,
    ClusterState,
    Event,
    JupyterState,
    LogLines,
    OutputLines,
    SetupEvent,
    SetupProgress,
    StepFinished,
    StepStarted,
    TunnelChanged,
)
from tui.core.models import ClusterStatus, StepResult, StepStatus, TunnelInfo, TunnelState, WorkerRow

SETUP_RUN: list[tuple[float, SetupEvent]] = [  # (seconds since the start, event), cut in the middle of the run
    (0.0, StepStarted("ssh", 0, 8, "Wait for SSH (up to 300 s)")),
    (0.2, StepFinished(StepResult("ssh", StepStatus.SKIPPED, 0.2))),
    (0.2, StepStarted("detect", 1, 8, "Detect the OS, architecture and home directory")),
    (0.5, OutputLines("detect", ("Ubuntu 24.04 LTS, x86_64, home /home/ubuntu",))),
    (0.5, StepFinished(StepResult("detect", StepStatus.DONE, 0.3))),
    (0.5, StepStarted("screen", 2, 8, "Ensure screen (or tmux) is installed, to keep Jupyter running")),
    (0.7, StepFinished(StepResult("screen", StepStatus.SKIPPED, 0.2))),
    (0.7, StepStarted("python", 3, 8, "Install Python + Jupyter with uv in ~/jupyter-env")),
    (1.9, OutputLines("python", ("Using CPython 3.12.3 interpreter at: /usr/bin/python3",
                                 "Creating virtual environment at: /home/ubuntu/jupyter-env",
                                 "Resolved 118 packages in 1.62s", "Downloading numpy (15.9MiB)",
                                 "Downloading pandas (11.7MiB)", "Downloading jupyterlab (11.2MiB)",
                                 "Prepared 118 packages in 6.41s", "Installed 118 packages in 1.03s",
                                 " + jupyterlab==4.6.6", " + notebook==7.5.1", " + numpy==2.3.5",
                                 " + pandas==2.3.3"))),
    (11.2, StepFinished(StepResult("python", StepStatus.DONE, 10.5))),
    (11.2, StepStarted("jupyter-config", 4, 8, "Write the Jupyter server config (port 8889, 127.0.0.1)")),
]

JUPYTER_LOG = [  # as the app shows it: cleaned, the token elided
    "[I 2026-01-01 09:00:01.120 ServerApp] jupyter_lsp | extension was successfully loaded.",
    "[I 2026-01-01 09:00:01.122 ServerApp] jupyter_server_terminals | extension was successfully loaded.",
    "[I 2026-01-01 09:00:01.130 LabApp] JupyterLab extension loaded from /home/ubuntu/jupyter-env/lib/python3.12/"
    "site-packages/jupyterlab",
    "[I 2026-01-01 09:00:01.131 ServerApp] jupyterlab | extension was successfully loaded.",
    "[I 2026-01-01 09:00:01.132 ServerApp] Serving notebooks from local directory: /home/ubuntu/workspace",
    "[I 2026-01-01 09:00:01.132 ServerApp] Jupyter Server 2.21.1 is running at:",
    "[I 2026-01-01 09:00:01.132 ServerApp] http://127.0.0.1:8889/lab?token=…",
    "[I 2026-01-01 09:00:01.133 ServerApp] Use Control-C to stop this server and shut down all kernels.",
    "[I 2026-01-01 09:02:14.871 ServerApp] Kernel started: 4f2c…",
    "[I 2026-01-01 09:02:15.503 ServerApp] Connecting to kernel 4f2c….",
    "[W 2026-01-01 09:05:40.002 ServerApp] 404 GET /api/contents/untitled.ipynb (127.0.0.1) 1.02ms",
    "[I 2026-01-01 09:06:02.911 ServerApp] Saving file at /analysis.ipynb",
]


def tunnel_up(instance_id: str, now: datetime, local_port: int = 8889, remote_port: int = 8889) -> TunnelInfo:
    """A tunnel up for 12 minutes, a notebook session's worth of traffic through it."""
    return TunnelInfo(instance_id, local_port, "127.0.0.1", remote_port, TunnelState.UP,
                      now - timedelta(minutes=12), 3_481_600, 182_272)


def setup_events(instance_id: str, t0: float) -> list[Event]:
    """The recorded setup run as the core emits it, started at monotonic time `t0`."""
    return [SetupProgress(instance_id, event, at=t0 + t) for t, event in SETUP_RUN]


def jupyter_events(instance_id: str, now: datetime, local_port: int = 8889, remote_port: int = 8889) -> list[Event]:
    """Jupyter running behind a tunnel that has been up a while, as the core emits it."""
    return [JupyterState(instance_id, "running", f"http://127.0.0.1:{local_port}/lab", local_port, remote_port),
            TunnelChanged(tunnel_up(instance_id, now, local_port, remote_port))]


def forward_events(instance_id: str, now: datetime) -> list[Event]:
    """A user's own forward (issue 22): TensorBoard on the VM, up for 5 minutes, beside Jupyter's tunnel."""
    return [TunnelChanged(TunnelInfo(instance_id, 6006, "127.0.0.1", 6006, TunnelState.UP, now - timedelta(minutes=5),
                                     918_528, 40_960, purpose="forward:tensorboard"))]


def log_events(instance_id: str) -> list[Event]:
    return [LogLines(instance_id, tuple(JUPYTER_LOG))]


def cluster_state(head_id: str, head: str, now: float, local_port: int = 8788) -> ClusterState:
    """A cluster a while into a computation: the head runs the scheduler and a worker, two c1.small workers."""
    gib = 1024 ** 3
    workers = (
        WorkerRow(head, "tls://10.0.0.12:40111", "running", 1, int(0.61 * gib), int(3.6 * gib), 3, now - 0.4),
        WorkerRow(f"{head}-w1", "tls://10.0.0.17:39201", "running", 2, int(0.83 * gib), int(1.8 * gib), 8, now - 0.2),
        WorkerRow(f"{head}-w2", "tls://10.0.0.18:44519", "running", 2, int(0.79 * gib), int(1.8 * gib), 7, now - 1.1),
    )
    status = ClusterStatus("tls://10.0.0.12:8786", "http://127.0.0.1:8787/status", workers, now - 1800)
    return ClusterState(head_id, status, f"http://127.0.0.1:{local_port}/status", at=now)


def cluster_events(head_id: str, head: str) -> list[Event]:
    """A cluster being created, as the Setup log pane shows it."""
    lines = [
        ("", "plan", "flavor: c1.small (2 vCPU, 2 GiB RAM; the smallest c1.* that fits: many small parallel jobs)"),
        (f"{head}-w1", "launch", f"{head}-w1 is ACTIVE at 10.0.0.17 (private only)"),
        (f"{head}-w2", "launch", f"{head}-w2 is ACTIVE at 10.0.0.18 (private only)"),
        (head, "probe", "Python 3.12.3, dask 2026.8.0, distributed 2026.8.0"),
        (head, "scheduler", "starting the scheduler at tls://10.0.0.12:8786"),
        (f"{head}-w1", "install", "installing dask[distributed]==2026.8.0 into ~/jupyter-env"),
        (f"{head}-w1", "worker", "starting the worker (2 threads)"),
        (f"{head}-w2", "worker", "starting the worker (2 threads)"),
        (f"{head}-w1", "connected", f"{head}-w1 connected (2/3)"),
    ]
    return [ClusterProgress(i, phase, m, head_id) for i, phase, m in lines]  # type: ignore[arg-type]
