"""The layering rules of DESIGN.md §1, checked by import-linter on every test run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The core does not import textual KEPT" in result.stdout
    assert "Widgets and screens do not import openstack or asyncssh KEPT" in result.stdout


def test_the_core_contract_names_every_core_module() -> None:
    """A new core module must join the "no textual" contract (the UI side: app, widgets, screens, messages)."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if "textual" in c["forbidden_modules"])
    listed = set(contract["source_modules"])
    ui_side = {"tui.ui.app", "tui.ui.widgets", "tui.ui.screens", "tui.ui.messages", "tui.__main__", "tui.__init__"}
    top_level = {f"tui.{p.stem}" for p in (ROOT / "tui").iterdir()
                 if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.name != "__pycache__"}
    assert top_level - ui_side - listed == set()


def test_the_app_path_imports_no_models_cloud_or_cli_before_its_first_frame() -> None:
    """What the first frame waits for: the app module and the startup path, not models/messages/cloud/CLI."""
    code = ("import sys; from tui.__main__ import parse_args; parse_args(['--demo']); import tui.startup, tui.ui.app; "
            "print(sorted(m for m in sys.modules if m in ('tui.core.models', 'tui.ui.messages', 'tui.core.cloud.base', 'tui.cli.cloud', "
            "'yaml', 'humanize', 'openstack', 'asyncssh', 'textual.widgets._data_table')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_help_does_not_import_openstack_or_textual() -> None:
    code = ("import sys; from tui.__main__ import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('openstack', 'textual', 'asyncssh')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
