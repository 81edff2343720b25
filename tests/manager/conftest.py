"""A sandbox instance (launched the way `cades-tui launch --wait` does: `plan_launch` + `launch_instance`) and
managers driving it.

Module scoped: each test module gets its own instance and its own XDG dirs under one base directory, so the
token scan can read every file the app wrote. Tests establish their own preconditions (e.g. Jupyter running) so
each passes alone and in any order.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tests._support import JUPYTER, Events, launch, sandbox_services, sandbox_settings
from tui.core.cloud.base import Cloud
from tui.core.config import Settings
from tui.core.engine import open_cloud
from tui.core.events import Emit
from tui.core.manager import RemoteManager
from tui.core.options import ManagerOptions
from tui.core.services import RemoteContext, Services
from tui.core.state import AppState

__all__ = ["Events", "World", "execute", "world", "xdg_env"]  # Events: the test modules import it from here


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


@pytest.fixture(scope="module")
def world(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("manager")
    name = f"mgr-{uuid.uuid4().hex[:6]}"
    settings = sandbox_settings(sandbox)
    services = sandbox_services(settings, base / "xdg_data_home" / "cades-tui",
                                base / "xdg_state_home" / "cades-tui")
    cloud = open_cloud(settings)
    try:
        launch(cloud, name, services.keystore)
        yield World(base, sandbox, cloud, settings, services, services.prepare(cloud, name))
    finally:
        try:
            cloud.delete(name, delete_volumes=True)  # also ends every process of the VM (Jupyter included)
        except Exception as exc:  # launch failed before the instance existed: nothing to clean up
            print(f"cleanup of {name}: {exc}")


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
