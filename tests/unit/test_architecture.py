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


def test_help_does_not_import_openstack_or_textual() -> None:
    code = ("import sys; from tui.__main__ import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('openstack', 'textual', 'asyncssh')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
