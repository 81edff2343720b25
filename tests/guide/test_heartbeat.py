"""A step whose command says nothing for a while (uv resolving, an installer unpacking: ~20 s) is not a frozen
screen: the runner says every few seconds that it is still running (issue 11). On a real sshd host."""

from __future__ import annotations

import re

from tui.core.guide import OutputLines, SetupSpec, StepFinished
from tui.core.guide.steps import SetupContext, Step, WaitForSSH
from tui.core.models import StepStatus

from .conftest import Rig


class Quiet(Step):
    """Silent for 1.6 s, then one line."""

    name = "quiet"

    def describe(self, ctx: SetupContext) -> str:
        return "a command silent for a while"

    async def check(self, ctx: SetupContext) -> bool:
        return False

    async def apply(self, ctx: SetupContext) -> None:
        await ctx.do("sleep 1.6; echo installed", what="the quiet command")


async def test_a_silent_step_says_every_few_seconds_that_it_is_still_running(rig: Rig) -> None:
    result = await rig.setup(SetupSpec(), steps=[WaitForSSH(), Quiet()], heartbeat_s=0.5)
    assert result.ok, result.summary
    lines = [line for e in rig.events if isinstance(e, OutputLines) and e.step == "quiet" for line in e.lines]
    beats = [line for line in lines if line.startswith("… still running")]
    assert 2 <= len(beats) <= 4 and lines[-1] == "installed", lines  # every 0.5 s of silence, until it spoke
    assert all(re.fullmatch(r"… still running \(\d s\)", line) for line in beats), beats  # time in the step
    done = next(e.result for e in rig.events if isinstance(e, StepFinished) and e.result.step == "quiet")
    assert done.status is StepStatus.DONE and not any("still running" in x for x in done.output_tail)
    assert "still running" not in rig.log.read()  # the command log holds commands, not the app's heartbeat
