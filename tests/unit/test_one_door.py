"""One door into the core: every CLI command and the app reach a capability through the engine API
(`tui.core.api.Engine`), the CLI's engine comes from one helper (`tui.cli.runner.with_engine`), and nothing behind the
engine (its cloud, manager, cluster lifecycle or services) is reached around it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AROUND = re.compile(r"ctx\.cloud\b|\bRemoteManager\b|\bServices\(|\bengine\.(cloud|manager|cluster|services)\b")


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
    assert not _hits("tui/ui", re.compile(r"\bengine\.(cloud|manager|cluster|services)\b"))
