"""Two sandbox instances (real sshd hosts) and CoreEngines built around them, sharing one state dir per module.

Each test builds its own engine (cheap: the cloud is shared and already authenticated) and closes it; tests that
need Jupyter ask `running(...)`, which adopts a running server or starts one, so each passes alone and in any order.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tui.core.cloud.base import Cloud
from tui.core.cloud.launch import plan_launch
from tui.core.config import JupyterSettings, Settings, SSHSettings
from tui.core.engine import CoreEngine, open_cloud
from tui.core.events import Event
from tui.core.keys import KeyStore
from tui.core.manager import ManagerOptions
from tui.core.models import Instance
from tui.core.services import Services, launch_instance
from tui.sandbox.sshhost import free_port

JUPYTER = str(Path(sys.executable).parent / "jupyter")  # the venv's, standing in for ~/jupyter-env
E = TypeVar("E")


@dataclass
class Events:
    """What an engine emitted, in order (from any thread); `wait` polls for one that matches."""

    items: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.items.append(event)

    def of(self, kind: type[E], since: int = 0) -> list[E]:
        return [e for e in self.items[since:] if isinstance(e, kind)]

    def mark(self) -> int:
        return len(self.items)

    async def wait(self, kind: type[E], pred: Callable[[E], bool] = lambda e: True, timeout: float = 10.0,
                   since: int = 0) -> E:
        async def poll() -> E:
            while True:
                for e in self.items[since:]:
                    if isinstance(e, kind) and pred(e):
                        return e
                await asyncio.sleep(0.02)

        return await asyncio.wait_for(poll(), timeout)


@dataclass
class Cloudy:
    base: Path
    sandbox: Any
    cloud: Cloud
    settings: Settings
    services: Services
    a: Instance
    b: Instance

    @property
    def state_path(self) -> Path:
        return self.services.state_dir / "state.json"

    def engine(self, events: Events) -> CoreEngine:
        return CoreEngine(self.settings, self.cloud, events, services=self.services,
                          options=ManagerOptions(jupyter_command=JUPYTER))


def launch(cloud: Cloud, name: str, keystore: KeyStore) -> Instance:
    plan = plan_launch(name, flavors=cloud.list_flavors(), images=cloud.list_images(),
                       networks=cloud.list_networks(), quota=cloud.get_quota(), key_name="")
    inst = launch_instance(cloud, plan.spec, lambda _line: None, keystore, wait=True)
    assert inst.status == "ACTIVE", inst
    return inst


@pytest.fixture(scope="module")
def cloudy(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloudy]:
    base = tmp_path_factory.mktemp("core")
    settings = Settings(cloud="sandbox", clouds_yaml=str(sandbox.clouds_yaml), ssh=SSHSettings(use_ssh_config=False),
                        jupyter=JupyterSettings(port=free_port(), local_port=0))
    app_data = base / "data" / "cades-tui"
    keystore = KeyStore(app_data)
    services = Services(settings, keystore, base / "state" / "cades-tui", app_data / "known_hosts")
    cloud = open_cloud(settings)
    tag = uuid.uuid4().hex[:6]
    names = [f"core-a-{tag}", f"core-b-{tag}"]
    try:
        a, b = (launch(cloud, n, keystore) for n in names)
        yield Cloudy(base, sandbox, cloud, settings, services, a, b)
    finally:
        for name in names:
            try:
                cloud.delete(name, delete_volumes=True)  # also ends the VM's processes (Jupyter included)
            except Exception as exc:  # never launched
                print(f"cleanup of {name}: {exc}")
