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
    report = " ".join(result.stdout.split())  # long contract names wrap
    for kept in ("The core never imports textual, the UI or the CLI KEPT",
                 "The UI never imports openstack or asyncssh, not even indirectly KEPT",
                 "The CLI never imports textual or the UI KEPT"):
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


def test_the_app_path_imports_no_models_cloud_or_cli_before_its_first_frame() -> None:
    """What the first frame waits for: the app module and the startup path, not models/messages/cloud, nor any CLI
    module but the parser's quick parse of the global options."""
    code = ("import sys; from tui.__main__ import parse_args; parse_args(['--demo']); import tui.startup, tui.ui.app; "
            "print(sorted(m for m in sys.modules if m in ('tui.core.models', 'tui.ui.messages', 'tui.core.cloud.base', "
            "'yaml', 'humanize', 'openstack', 'asyncssh', 'textual.widgets._data_table') "
            "or (m.startswith('tui.cli.') and m != 'tui.cli.parser')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_help_does_not_import_openstack_or_textual() -> None:
    code = ("import sys; from tui.cli.parser import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('openstack', 'textual', 'asyncssh')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
