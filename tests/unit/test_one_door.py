"""One door into the core: every CLI command and the app reach a capability through the engine API
(`tui.core.api.Engine` and its capability objects: `engine.cluster.create(...)`), the CLI's engine comes from one
helper (`tui.cli.runner.with_engine`), and nothing behind the engine (its cloud, manager, cluster lifecycle or
services) or behind a capability object is reached around it."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import get_type_hints

from tui.core import api

ROOT = Path(__file__).resolve().parents[2]
AROUND = re.compile(r"ctx\.cloud\b|\bRemoteManager\b|\bServices\(|\bengine\.(cloud|manager|lifecycle|services)\b")
REACH = re.compile(r"\bengine\.(\w+)(?:\.(\w+))?")


def _hits(folder: str, pattern: re.Pattern[str], skip: tuple[str, ...] = ()) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for path in sorted((ROOT / folder).rglob("*.py"))
            if path.name not in skip
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]


def test_cli_commands_call_the_engine_only() -> None:
    assert not _hits("tui/cli", AROUND, skip=("runner.py",)), \
        "call an engine method (a `# -- name --` block in api.py and engine.py)"


def test_one_helper_builds_the_engine_for_the_cli() -> None:
    """`runner.py` builds it (from the profile's cloud); no other CLI module does."""
    assert not _hits("tui/cli", re.compile(r"\bCoreEngine\(|\bengine_factory\("), skip=("runner.py",)), \
        "get the engine from tui.cli.runner.with_engine (or @engine_command)"


def test_the_app_does_not_reach_around_the_engine() -> None:
    assert not _hits("tui/ui", re.compile(r"\bengine\.(cloud|manager|lifecycle|services)\b"))


def _members(protocol: type) -> set[str]:
    return {n for n in vars(protocol) if not n.startswith("_")}


def test_front_ends_use_only_the_engine_protocols() -> None:
    """`engine.NAME` is a member of `Engine`, and `engine.CAPABILITY.NAME` a member of that capability's Protocol
    (`engine.images.create`, never `engine.images.poll_s` or `engine.forwards.service`)."""
    engine = _members(api.Engine)
    capabilities = {name: _members(get_type_hints(member.fget)["return"]) for name, member in vars(api.Engine).items()
                    if isinstance(member, property)}
    assert capabilities and all(inspect.isclass(get_type_hints(vars(api.Engine)[n].fget)["return"])
                                for n in capabilities)
    wrong = []
    for folder in ("tui/cli", "tui/ui"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for m in REACH.finditer(line):
                    name, attr = m.group(1), m.group(2)
                    if name not in engine or (name in capabilities and attr is not None
                                              and attr not in capabilities[name]):
                        wrong.append(f"{path.relative_to(ROOT)}:{n}: {m.group(0)}")
    assert not wrong, "reach the core through `tui.core.api.Engine` and its capability Protocols only"
