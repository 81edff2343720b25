"""The autostop policy from the profile and the command line: durations, defaults, and one-line refusals naming
the file:line, the key and the fix; keystonemiddleware's path matching as the sandbox copies it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.core.autostop.policy import Policy, PolicyError, human, parse_duration
from tui.core.autostop.profile import from_settings
from tui.core.config import DEFAULTS, ConfigError, load_file
from tui.sandbox.appcreds import path_matches


def test_durations() -> None:
    assert [parse_duration(t) for t in ("90s", "45m", "2h", "1d", "30", "1.5h")] == [90, 2700, 7200, 86400, 30,
                                                                                    5400]
    assert parse_duration("soon") is None and parse_duration("5 weeks") is None
    assert human(3600) == "1h" and human(90) == "90s" and human(300) == "5m"


def test_profile_default_is_off_and_a_profile_arms_it(tmp_path: Path) -> None:
    assert from_settings(DEFAULTS) is None
    path = tmp_path / "config.yaml"
    path.write_text("autostop:\n  idle: 2h\n  action: shelve\n  cpu_percent: 10\n  warn_before: 10m\n")
    policy = from_settings(load_file(path))
    assert policy == Policy(idle_s=7200, action="shelve", cpu_percent=10, warn_s=600, every_s=60)
    path.write_text("autostop:\n  idle: off\n")  # YAML reads a bare off as false: still "off"
    assert from_settings(load_file(path)) is None
    assert from_settings(DEFAULTS, "60m", "stop") == Policy(idle_s=3600, warn_s=300)  # the command line on top


@pytest.mark.parametrize(("text", "said"), [
    ("autostop:\n  idle: 1m\n", "config.yaml:2: autostop.idle: expected off, or a duration of at least 5m"),
    ("autostop:\n  idle: soon\n", "autostop.idle: expected off, or a duration"),
    ("autostop:\n  action: hibernate\n", "config.yaml:2: autostop.action: expected one of stop, shelve"),
    ("autostop:\n  cpu_percent: 0\n", "autostop.cpu_percent: expected a percentage above 0"),
    ("autostop:\n  check_every: 1s\n", "autostop.check_every: expected a duration of at least 10s"),
    ("autostop:\n  idel: 5m\n", "unknown key 'autostop.idel'"),
])
def test_bad_profile_values_are_one_line(tmp_path: Path, text: str, said: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as bad:
        load_file(path)
    assert said in str(bad.value) and "\n" not in str(bad.value)


@pytest.mark.parametrize(("idle", "action", "said"), [
    ("4m", None, "idle 4m: expected at least 5m"),
    ("ten", None, "idle 'ten': expected a duration like 90s, 45m, 2h or 1d"),
    ("60m", "hibernate", "action 'hibernate': expected one of stop, shelve"),
])
def test_bad_command_line_values(idle: str, action: str | None, said: str) -> None:
    with pytest.raises(PolicyError, match=said):
        from_settings(DEFAULTS, idle, action)


def test_keystonemiddleware_path_matching() -> None:
    rule = "/v2.1/servers/abc/action"
    assert path_matches("/v2.1/servers/abc/action", rule)
    assert not path_matches("/v2.1/servers/abd/action", rule) and not path_matches("/v2.1/servers/abc/action/x", rule)
    assert path_matches("/v2.1/servers/xyz/action", "/v2.1/servers/{server_id}/action")
    assert path_matches("/v2.1/servers/x/y", "/v2.1/servers/**") and not path_matches("/v2.1/servers/x/y",
                                                                                       "/v2.1/servers/*")
    assert not path_matches("/v2X1/servers/abc/action", rule)  # a '.' is a '.', not any character
