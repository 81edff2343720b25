"""The autostop's @reboot line in a user's crontab, as text: added once, replaced in place, removed, every other line
kept byte-for-byte; the sandbox's cron reads `@reboot` jobs as cron does; the status line says when the watchdog
will not start again at a boot by itself."""

from __future__ import annotations

from tui.core.autostop import watchdog
from tui.core.autostop.status import AutostopStatus
from tui.sandbox.cron import at_reboot

OURS = watchdog.boot_line("/home/ubuntu")
USER = "# m h dom mon dow command\nMAILTO=\"\"\n*/5 * * * * /home/ubuntu/backup.sh  >/dev/null 2>&1\n\n"


def test_the_line_runs_boot_sh_quoted_and_marked() -> None:
    assert OURS == "@reboot /bin/sh /home/ubuntu/.cades-tui/autostop/boot.sh # cades-tui autostop"
    odd = watchdog.boot_line("/home/o'brien 100%")
    assert odd == ("@reboot /bin/sh '/home/o'\"'\"'brien 100\\%/.cades-tui/autostop/boot.sh' # cades-tui autostop")
    assert watchdog.is_ours(odd + "\n") and not watchdog.is_ours("@reboot /bin/sh x.sh # cades-tui autostopped\n")


def test_add_to_nothing_and_to_a_users_crontab() -> None:
    assert watchdog.crontab_with("", OURS) == OURS + "\n"
    assert watchdog.crontab_with(USER, OURS) == USER + OURS + "\n"
    no_newline = "0 3 * * * /usr/bin/true"
    assert watchdog.crontab_with(no_newline, OURS) == no_newline + "\n" + OURS + "\n"


def test_adding_twice_leaves_one_line_and_a_replace_keeps_its_place() -> None:
    once = watchdog.crontab_with(USER, OURS)
    assert watchdog.crontab_with(once, OURS) == once
    old = "@reboot /bin/sh /old/place/boot.sh # cades-tui autostop"
    text = "A=1\n" + old + "\n0 3 * * * x\n" + old + "\n"
    assert watchdog.crontab_with(text, OURS) == "A=1\n" + OURS + "\n0 3 * * * x\n"


def test_remove_keeps_every_other_byte() -> None:
    crlf_and_tabs = "0 1 * * *\tcmd one \r\n" + OURS + "\n# a comment, with trailing space \n\n\n5 4 * * * last"
    assert watchdog.crontab_with(crlf_and_tabs, None) == ("0 1 * * *\tcmd one \r\n# a comment, with trailing "
                                                          "space \n\n\n5 4 * * * last")
    assert watchdog.crontab_with(USER + OURS + "\n", None) == USER
    assert watchdog.crontab_with(OURS + "\n", None) == ""
    assert watchdog.crontab_with(USER, None) == USER


def test_the_sandbox_reads_reboot_jobs_as_cron_does() -> None:
    env, jobs = at_reboot('# c\nPATH = /x:/y\nQ="a b"\n@reboot  echo 50\\% done%line one%two\n'
                          "@daily nope\n1 2 3 4 5 @reboot not me\n@reboot\n" + OURS + "\n")
    assert env == {"PATH": "/x:/y", "Q": "a b"}
    assert jobs == [("echo 50% done", "line one\ntwo\n"),
                    ("/bin/sh /home/ubuntu/.cades-tui/autostop/boot.sh # cades-tui autostop", None)]


def test_status_line_says_when_it_restarts_only_at_the_next_attach() -> None:
    def line(at_boot: str, armed: bool = True) -> str:
        return AutostopStatus.parse(armed, True, '{"action": "stop", "idle_s": 3600}', at_boot).line(0.0)

    assert line("cron") == "autostop: stop after 1h idle"
    assert line("no-cron") == "autostop: stop after 1h idle; will restart at the next attach: cron is not installed"
    assert "its @reboot line is not in the crontab" in line("no-line")
    assert line("no-cron", armed=False) == "autostop off" and line("bogus") == "autostop: stop after 1h idle"
    assert AutostopStatus.parse(True, True, "", "no-cron").to_json()["at_boot"] == "no-cron"
