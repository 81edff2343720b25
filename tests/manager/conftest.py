"""A sandbox instance (launched the way `cades-tui launch --wait` does: `plan_launch` + `launch_instance`) and
managers driving it.

Module scoped: each test module gets its own instance and its own XDG dirs under one base directory, so the
token scan can read every file the app wrote. Tests establish their own preconditions (e.g. Jupyter running) so
each passes alone and in any order.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tui.core.cloud.base import Cloud
from tui.core.cloud.launch import plan_launch
from tui.core.config import JupyterSettings, Settings, SSHSettings
from tui.core.engine import open_cloud
from tui.core.events import Emit, Event
from tui.core.keys import KeyStore
from tui.core.manager import ManagerOptions, RemoteManager
from tui.core.services import RemoteContext, Services, launch_instance
from tui.core.state import AppState
from tui.sandbox.sshhost import free_port

JUPYTER = str(Path(sys.executable).parent / "jupyter")  # the venv's, standing in for ~/jupyter-env
E = TypeVar("E")


@dataclass
class World:
    base: Path
    sandbox: Any
    cloud: Cloud
    settings: Settings
    services: Services
    ctx: RemoteContext

    @property
    def iid(self) -> str:
        return self.ctx.instance.id

    @property
    def state_path(self) -> Path:
        return self.services.state_dir / "state.json"

    def manager(self, emit: Emit, services: Services | None = None) -> RemoteManager:
        return RemoteManager(self.settings, services or self.services, AppState.load(self.state_path), emit,
                             ManagerOptions(jupyter_command=JUPYTER))

    def services_with(self, known_hosts: Path) -> Services:
        return Services(self.settings, self.services.keystore, self.services.state_dir, known_hosts)

    def files_containing(self, secret: str) -> list[Path]:
        return [p for p in self.base.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def xdg_env(base: Path) -> dict[str, str]:
    return {var: str(base / var.lower()) for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")}


def launch(cloud: Cloud, name: str, keystore: KeyStore) -> None:
    """What `cades-tui launch NAME --wait` does: the guide's plan (newest Ubuntu, a fitting flavor), the app's own
    key pair, an SSH rule; waits until ACTIVE."""
    plan = plan_launch(name, flavors=cloud.list_flavors(), images=cloud.list_images(),
                       networks=cloud.list_networks(), quota=cloud.get_quota(), key_name="")
    inst = launch_instance(cloud, plan.spec, lambda _line: None, keystore, wait=True)
    assert inst.status == "ACTIVE", inst


@pytest.fixture(scope="module")
def world(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("manager")
    name = f"mgr-{uuid.uuid4().hex[:6]}"
    settings = Settings(cloud="sandbox", clouds_yaml=str(sandbox.clouds_yaml), ssh=SSHSettings(use_ssh_config=False),
                        jupyter=JupyterSettings(port=free_port(), local_port=0))
    app_data = base / "xdg_data_home" / "cades-tui"
    keystore = KeyStore(app_data)
    services = Services(settings, keystore, base / "xdg_state_home" / "cades-tui", app_data / "known_hosts")
    cloud = open_cloud(settings)
    try:
        launch(cloud, name, keystore)
        yield World(base, sandbox, cloud, settings, services, services.prepare(cloud, name))
    finally:
        try:
            cloud.delete(name, delete_volumes=True)  # also ends every process of the VM (Jupyter included)
        except Exception as exc:  # launch failed before the instance existed: nothing to clean up
            print(f"cleanup of {name}: {exc}")


@dataclass
class Events:
    """What a manager emitted, in order; `wait` polls for one that matches."""

    items: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.items.append(event)

    def of(self, kind: type[E], since: int = 0) -> list[E]:
        return [e for e in self.items[since:] if isinstance(e, kind)]

    def mark(self) -> int:
        """The position to pass as `since` to see only what comes next."""
        return len(self.items)

    async def wait(
        self, kind: type[E], pred: Callable[[E], bool] = lambda e: True, timeout: float = 10.0, since: int = 0
    ) -> E:
        """The first event of `kind` matching `pred` among those emitted after the first `since`."""

        async def poll() -> E:
            while True:
                for e in self.items[since:]:
                    if isinstance(e, kind) and pred(e):
                        return e
                await asyncio.sleep(0.02)

        return await asyncio.wait_for(poll(), timeout)


async def execute(local_port: int, token: str, kernel_id: str, code: str) -> None:
    """One execute_request on the kernel's websocket, as JupyterLab sends it."""
    req = HTTPRequest(f"ws://127.0.0.1:{local_port}/api/kernels/{kernel_id}/channels",
                      headers={"Authorization": f"token {token}"})
    ws = await websocket_connect(req)
    msg = {
        "header": {"msg_id": uuid.uuid4().hex, "username": "test", "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3", "date": datetime.now(UTC).isoformat()},
        "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }
    await ws.write_message(json.dumps(msg))
    ws.close()
