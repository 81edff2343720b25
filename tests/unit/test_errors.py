"""One error family (`tui.core.errors`): every error class of the core is a `CadesError` whose kind says what the
caller does, and no caller decides on `__cause__`."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import tui.core
from tui.core import errors

ROOT = Path(__file__).resolve().parents[2]
# Errors outside the family on purpose: what callers catch as an OSError (a port in use), and the demo's own stop.
OUTSIDE = {"tui.core.remote.localport.PortBusyError", "tui.core.demo.DemoStopped"}


def core_error_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(tui.core.__path__, "tui.core."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == info.name:
                found[f"{info.name}.{name}"] = obj
    return found


def test_every_error_of_the_core_is_in_the_family() -> None:
    outside = sorted(name for name, cls in core_error_classes().items()
                     if not issubclass(cls, errors.CadesError) and name not in OUTSIDE)
    assert not outside, f"re-parent these under tui.core.errors (a kind per decision): {outside}"


def test_each_error_has_the_kind_its_callers_decide_on() -> None:
    from tui.core.cloud import base as cloud
    from tui.core.cluster import errors as cluster
    from tui.core.config import ConfigError
    from tui.core.remote import connection as ssh

    kinds = {
        cloud.InvalidInput: errors.BadInput, ConfigError: errors.BadInput, cloud.NotFound: errors.Missing,
        cloud.AuthError: errors.Refused, cloud.QuotaExceeded: errors.Refused, ssh.HostKeyChanged: errors.Refused,
        cloud.RateLimited: errors.RetryLater, ssh.ConnectionDropped: errors.RetryLater,
        cloud.CloudUnreachable: errors.Unreachable, ssh.SSHUnreachable: errors.Unreachable,
        errors.NoConnection: errors.Unreachable, cluster.ClusterCancelled: errors.Declined,
        errors.Cancelled: errors.Declined,
    }
    wrong = [f"{cls.__name__} is not {kind.__name__}" for cls, kind in kinds.items() if not issubclass(cls, kind)]
    assert not wrong


def test_no_caller_decides_on_the_cause() -> None:
    """A retry (or any decision) reads the error's kind; `__cause__` is only walked to translate a library's error."""
    pattern = re.compile(r"isinstance\([^)]*__cause__")
    hits = [f"{path.relative_to(ROOT)}:{n}" for path in sorted((ROOT / "tui").rglob("*.py"))
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not hits, hits
