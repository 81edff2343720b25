"""The `realcloud` tier: the app's cloud layer against real Keystone, Glance, Placement, Nova, Neutron and Cinder.

- `realcloud` (session): the six services from PyPI (tests/realcloud/requirements.txt) in their own venv,
  installed once and kept while they match the pinned file, started on 127.0.0.1 for the session and stopped in
  `finally` (tests/realcloud/services.py). If they cannot be installed: a failure under CI=true, else a skip that
  says why. If they are installed but do not start: always a failure, with the service's log tail.
- `rc_cloud`: the app's own `OpenStackCloud`, opened as the app opens it (`open_cloud`, the demo user's
  clouds.yaml entry `realcloud`), its polls shortened.
- `keystone`: `KeystoneAccess` — Keystone's URL, admin and demo credentials, users, tokens, application
  credentials and TOTP users for auth tests.
Every test here is marked `realcloud` (`pytest -m realcloud` runs the tier alone, `-m "not realcloud"` skips it).
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.realcloud import seed
from tests.realcloud.configs import SERVICES
from tests.realcloud.keystone import KeystoneAccess, User
from tests.realcloud.services import RealCloud, StartError, ensure_venv

HERE = Path(__file__).resolve().parent
TIMINGS: dict[str, float] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.realcloud)
            item.add_marker(pytest.mark.timeout(1200))  # the first test also waits for the install and start


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.write_line("realcloud tier: " + ", ".join(f"{k} {v:.0f} s" for k, v in TIMINGS.items()))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    """A failed test of the tier shows the services' last ERROR lines (their logs go away with the run)."""
    outcome = yield
    report = outcome.get_result()
    cloud = getattr(item, "funcargs", {}).get("realcloud")
    if report.failed and isinstance(cloud, RealCloud):
        for service in SERVICES:
            errors = [line for line in cloud.log(service).splitlines() if " ERROR " in line][-15:]
            if errors:
                report.sections.append((f"realcloud {service} log (ERROR lines)", "\n".join(errors)))


@pytest.fixture(scope="session")
def realcloud() -> Iterator[RealCloud]:
    attach = os.environ.get("CADES_REALCLOUD_ATTACH")  # the --dir of a running `services up` (to debug a test)
    if attach:
        yield RealCloud.attach(Path(attach))
        return
    try:
        TIMINGS["install"] = ensure_venv()
    except (StartError, OSError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the real OpenStack services could not be installed: {exc}")
        pytest.skip(f"the real OpenStack services could not be installed (offline?): {exc}")
    began = time.monotonic()
    cloud = RealCloud()
    try:
        try:
            cloud.start()
        except StartError as exc:  # a free port taken by another program meanwhile: once more, on new ports
            if "Address already in use" not in str(exc):
                raise
            cloud.remove()
            cloud = RealCloud()
            cloud.start()
        TIMINGS["start"] = time.monotonic() - began
        TIMINGS.update({f"start: {k}": v for k, v in cloud.timings.items()})
        yield cloud
    finally:
        cloud.stop()
        TIMINGS["start..stop"] = time.monotonic() - began
        cloud.remove()


@pytest.fixture(scope="session")
def keystone(realcloud: RealCloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeystoneAccess]:
    lay = realcloud.layout
    demo = User("demo", "", lay.extra["demo_password"], "demo", lay.extra["demo_project_id"])
    access = KeystoneAccess(lay.keystone, lay.admin_password, demo, tmp_path_factory.mktemp("keystone"))
    demo_id = access.connect(demo).current_user_id
    access.demo = User("demo", demo_id, demo.password, "demo", demo.project_id)
    access.endpoints = {stype: lay.url(svc) + path.replace("$(project_id)s", demo.project_id)
                        for svc, (stype, path) in seed.CATALOG.items()} | {"identity": lay.keystone}
    try:
        yield access
    finally:
        access.cleanup()


@pytest.fixture
def rc_cloud(realcloud: RealCloud, monkeypatch: pytest.MonkeyPatch) -> Any:
    from tui.core.cloud import openstack_cloud
    from tui.core.cloud.clouds_yaml import open_cloud

    monkeypatch.setattr(openstack_cloud, "POLL_S", 0.3)
    return open_cloud("realcloud", str(realcloud.clouds_yaml()))
