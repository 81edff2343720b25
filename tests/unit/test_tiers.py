"""The fast tier's rule (tests/_support.py `is_fast`, applied by tests/conftest.py): a test is marked `fast` only when
nothing it runs starts a process, an SSH host or a sandbox cloud — checked here on the rule itself, on the fixtures
the suite really has, and on the tests collected in this very run.

The process-starting snippets below are spelled with a "·" taken out before use, so that this module itself starts
nothing by the rule (and is in the fast tier: `test_this_module_is_fast`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests._support import TESTS, is_fast, starts_something

SUB = "sub" + "process"
# Fixtures (by conftest, relative to tests/) that start a sandbox, an SSH host or a process, directly or through the
# fixtures they take. Names reused with another meaning elsewhere (`cli`, `rig`, `target`) are listed per file.
STARTERS = {
    "conftest.py": {"sandbox", "ssh_host", "new_vm", "gateway", "connect", "tunnel_target", "sandbox_env"},
    "auth/conftest.py": {"sb"},
    "cli_remote/conftest.py": {"cli_world", "cli", "subprocess_env", "jupyter_running", "foreground"},
    "cluster/conftest.py": {"rig"},
    "core/conftest.py": {"cloudy"},
    "guide/conftest.py": {"ssh_host", "target", "rig"},
    "manager/conftest.py": {"world"},
    "remote/conftest.py": {"ssh_host", "target"},
    "sandbox/conftest.py": {"sandbox", "conn"},
    "ui/conftest.py": {"sb", "cloud", "scene_sandbox", "make_app"},
    "realcloud/conftest.py": {"realcloud", "keystone", "rc_cloud"},
}
PURE = {"client_key", "client_key_file", "forwarder", "pkg_cache", "uv_on_path", "echo_port", "roundtrip", "ui",
        "jupyter_cmd", "_isolated_xdg", "_quick_waits", "_fresh_log_once"}


@pytest.mark.parametrize("code", [
    "Sandbox·(tmp_path, delays=Delays.fast())", "with running_sandbox·(base) as sb:", "SSHHost·(root, [key])",
    f"import {SUB}", f"{SUB}.run(['ssh', '-V'])", "asyncio.create_subprocess_exec·('ls')", "Popen·(argv)",
    "os·.fork()", "os·.execvp('ssh', argv)", "pty·.fork()", "asyncssh·.connect('127.0.0.1', port)",
    "main(['-·-demo', 'list'])", "start_demo·(state_dir)",
])
def test_every_way_to_start_something_is_seen(code: str) -> None:
    assert starts_something(code.replace("·", ""))


@pytest.mark.parametrize("code", [
    "plan_launch(name, flavors=[], images=[], networks=[], quota=q, key_name='')", "KnownHosts(path).add(h, p, k)",
    "await app.run_test()", "json.loads(text)", "asyncssh.generate_private_key('ssh-ed25519')", "sandbox_settings(sb)",
])
def test_pure_code_is_not_taken_for_a_start(code: str) -> None:
    assert not starts_something(code)


def _fixtures(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (source, the fixtures it takes) of each fixture a conftest defines."""
    text = path.read_text()
    found = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                "fixture" in ast.unparse(d) for d in node.decorator_list):
            found[node.name] = (ast.get_source_segment(text, node) or "", [a.arg for a in node.args.args])
    return found


def test_fixtures_that_start_something_are_seen_to_directly_or_through_the_fixtures_they_take() -> None:
    defined = {str(p.relative_to(TESTS)): _fixtures(p) for p in sorted(TESTS.glob("**/conftest.py"))}
    shared = defined["conftest.py"]

    def starts(name: str, own: dict[str, tuple[str, list[str]]], seen: frozenset[str] = frozenset()) -> bool:
        source, takes = own.get(name) if name not in seen and name in own else shared[name]
        return starts_something(source) or any(starts(t, own, seen | {name}) for t in takes
                                               if (t in own or t in shared) and t != name)

    for conftest, names in STARTERS.items():
        for name in names:
            assert name in defined[conftest], f"{conftest} defines no fixture {name!r} any more: update STARTERS"
            assert starts(name, defined[conftest]), f"{conftest}::{name} starts something, the rule misses it"
    for conftest, own in defined.items():
        for name in PURE & own.keys():
            assert not starts(name, own), f"{conftest}::{name} starts nothing, the rule takes it for a start"


def test_no_fast_test_uses_a_fixture_that_starts_something(request: pytest.FixtureRequest) -> None:
    """Over every test collected in this run (all of them in a whole-suite run)."""
    starters = set().union(*STARTERS.values())
    fast = [item for item in request.session.items if item.get_closest_marker("fast")]
    assert request.node in fast
    for item in fast:
        assert not starters & set(item.fixturenames), item.nodeid
        assert item.get_closest_marker("slow") is None, item.nodeid
        assert not starts_something(item.path.read_text()), item.nodeid


def test_this_module_is_fast(request: pytest.FixtureRequest) -> None:
    assert is_fast(request.node) and request.node.get_closest_marker("fast") is not None
