"""The layering rules of DESIGN.md §1, checked by import-linter on every test run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    report = " ".join(result.stdout.split())  # long contract names wrap
    for kept in ("The core never imports textual, the UI or the CLI KEPT",
                 "The UI never imports openstack or asyncssh, not even indirectly KEPT",
                 "The CLI never imports textual or the UI KEPT",
                 "The core never imports the sandbox KEPT"):
        assert kept in report, result.stdout


def test_every_room_is_in_the_layers_contract() -> None:
    """A new top-level module or package of tui must take its place in the layers (or be the sandbox, which
    imports nothing of the app)."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    layers = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")["layers"]
    listed = {room.strip() for layer in layers for room in layer.split("|")}
    top_level = {f"tui.{p.stem}" for p in (ROOT / "tui").iterdir()
                 if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.name != "__pycache__"}
    assert top_level - listed - {"tui.__init__", "tui.sandbox"} == set()


# What the first frame never waits for: the core's engine and manager (and with them openstacksdk and asyncssh), the
# live state with the core's models and events (~40 dataclasses, ~30 ms to create), the profile parser (no profile
# here), humanize, the DataTable, and any command-line module but the parser.
NOT_BEFORE_THE_FIRST_FRAME = ("tui.core.engine", "tui.core.manager", "tui.core.services", "tui.core.live",
                              "tui.core.models", "tui.core.events", "openstack", "asyncssh", "keystoneauth1", "yaml",
                              "humanize", "textual.widgets._data_table")


def _late(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if m in NOT_BEFORE_THE_FIRST_FRAME or m.split(".")[0] in ("openstack", "asyncssh")
                  or (m.startswith("tui.cli.") and m != "tui.cli.parser"))


def test_the_app_path_imports_no_models_cloud_or_cli_before_its_first_frame() -> None:
    """What the app module and the startup path import: not models/messages/cloud, nor any CLI module but the
    parser's quick parse of the global options."""
    code = ("import sys, json; from tui.__main__ import parse_args; parse_args(['--demo']); import tui.startup, "
            "tui.ui.app; print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    modules = json.loads(out.stdout)
    assert "tui.ui.app" in modules and "tui.cli.parser" in modules  # the probe saw the path it means to
    early = [m for m in modules if m in ("tui.core.models", "tui.ui.messages", "tui.core.cloud.base")]
    assert _late(modules) + early == [], out.stdout


FIRST_FRAME_PROBE = """
import json, sys, asyncio
from tui.__main__ import parse_args
from tui.startup import prepare

args = parse_args(["--demo"])
settings, demo = prepare(args)
from tui.ui.app import CadesApp

seen = {}


async def on_ready(self):  # the first frame is on screen: what was needed for it is loaded
    seen["modules"] = sorted(sys.modules)
    self.exit()


def factory(emit):
    raise AssertionError("the engine is built after the first frame")


CadesApp.on_ready = on_ready


async def main():
    app = CadesApp(settings, factory)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(100):
            if "modules" in seen:
                break
            await pilot.pause(0.05)


try:
    asyncio.run(main())
finally:
    if demo is not None:
        demo.stop()
print(json.dumps(seen.get("modules")))
"""


def test_the_first_frame_is_drawn_without_the_engine_the_cloud_or_the_cli() -> None:
    """Run the real app (headless) up to its first frame — `on_ready` — and list what it had imported by then."""
    out = subprocess.run([sys.executable, "-c", FIRST_FRAME_PROBE], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert modules is not None, "the app never reached its first frame"
    assert {"tui.ui.app", "tui.ui.widgets.panes", "textual.app"} <= set(modules)  # the probe saw a real app
    assert _late(modules) == [], _late(modules)


def test_help_does_not_import_openstack_or_textual() -> None:
    code = ("import sys; from tui.cli.parser import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('openstack', 'textual', 'asyncssh')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# -- size and shape: rooms stay readable -------------------------------------------------------------------------

MAX_FUNCTION_LINES = 100
MAX_AREA_MODULE_LINES = 400
MAX_APP_LINES = 300


def _modules() -> list[Path]:
    return sorted(p for p in (ROOT / "tui").rglob("*.py") if "__pycache__" not in p.parts)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_no_function_is_over_100_lines() -> None:
    import ast

    long: list[str] = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = (node.end_lineno or node.lineno) - first + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{_rel(path)}:{node.lineno} {node.name} ({length} lines)")
    assert long == [], "functions over 100 lines:\n" + "\n".join(long)


def test_area_modules_and_the_app_stay_small() -> None:
    areas = ROOT / "tui" / "ui" / "areas"
    assert list(areas.glob("*.py")), "tui/ui/areas moved: update this test"
    too_long = [f"{_rel(p)} ({n} lines)" for p in sorted(areas.glob("*.py"))
                if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_AREA_MODULE_LINES]
    assert too_long == []
    # the one-line delegations to the owners (Textual dispatches keys and messages to the App) are routing, not
    # behaviour: each feature adds a few; what the App itself does is the rest
    lines = (ROOT / "tui" / "ui" / "app.py").read_text(encoding="utf-8").splitlines()
    delegation = re.compile(r"^    (async )?def (action|on)_\w+\(.*\) -> None: (await )?self\.\w+\.\w+\(.*\)$")
    app = sum(1 for line in lines if not delegation.match(line))
    assert app <= MAX_APP_LINES, f"tui/ui/app.py has {app} lines: move what an area does into tui/ui/areas"


def test_every_module_starts_with_a_docstring() -> None:
    import ast

    missing = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        first = tree.body[0] if tree.body else None
        is_doc = (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                  and isinstance(first.value.value, str) and first.value.value.strip())
        if not is_doc:
            missing.append(_rel(path))
    assert missing == [], "modules without a docstring first:\n" + "\n".join(missing)


# Tasks their creator awaits (or cancels and awaits) itself, so a failure reaches the caller: not background work.
AWAITED_BY_THEIR_CREATOR = {
    "tui/core/jupyter/lifecycle.py": 1,  # the tunnel opened while Jupyter boots: awaited in the start's `finally`
    "tui/core/jupyter/server.py": 1,  # the start's log collector: cancelled and awaited when the server is ready
    "tui/core/jupyter/logtail.py": 1,  # the tail's reader: cancelled and awaited by `LogTail.close`
    "tui/core/jupyter/follow.py": 2,  # the process watch and the state wait: raced, cancelled and awaited at once
}


def test_background_tasks_in_the_core_are_spawned() -> None:
    """A task nobody awaits goes through `tui.core.tasks.spawn`: held until it ends, and its failure logged and
    said (`BackgroundFailed`) — never a bare `create_task`/`ensure_future` that dies silently."""
    import re

    found = {}
    for path in sorted((ROOT / "tui" / "core").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        count = len(re.findall(r"\b(?:create_task|ensure_future)\(", path.read_text(encoding="utf-8")))
        if count and rel != "tui/core/tasks.py":
            found[rel] = count
    assert found == AWAITED_BY_THEIR_CREATOR
