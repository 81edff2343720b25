"""Two sandbox instances (real sshd hosts) and CoreEngines built around them, sharing one state dir per module.

Each test builds its own engine (cheap: the cloud is shared and already authenticated) and closes it; tests that
need Jupyter ask `running(...)`, which adopts a running server or starts one, so each passes alone and in any order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests._support import JUPYTER, Events, launch, sandbox_services, sandbox_settings
from tui.core.cloud.base import Cloud
from tui.core.config import Settings
from tui.core.engine import CoreEngine, open_cloud
from tui.core.models import Instance
from tui.core.options import ManagerOptions
from tui.core.services import Services


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


@pytest.fixture(scope="module")
def cloudy(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloudy]:
    base = tmp_path_factory.mktemp("core")
    settings = sandbox_settings(sandbox)
    services = sandbox_services(settings, base / "data" / "cades-tui", base / "state" / "cades-tui")
    cloud = open_cloud(settings)
    tag = uuid.uuid4().hex[:6]
    names = [f"core-a-{tag}", f"core-b-{tag}"]
    try:
        a, b = (launch(cloud, n, services.keystore) for n in names)
        yield Cloudy(base, sandbox, cloud, settings, services, a, b)
    finally:
        for name in names:
            try:
                cloud.delete(name, delete_volumes=True)  # also ends the VM's processes (Jupyter included)
            except Exception as exc:  # never launched
                print(f"cleanup of {name}: {exc}")
