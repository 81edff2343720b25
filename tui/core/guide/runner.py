"""Run the setup steps in order, emitting progress events; stop at the first failure; resume after a drop."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence

from tui.core.events import OutputLines, PipelineFinished, Reconnecting, SetupEvent, StepFinished, StepStarted
from tui.core.guide.executor import DryRunExecutor, Executor
from tui.core.guide.settings import SetupSpec
from tui.core.guide.steps import ApproveFormat, SetupContext, Step, StepFailed, default_steps
from tui.core.models import StepResult, StepStatus
from tui.core.remote.commands import TAIL_LINES
from tui.core.remote.connection import ConnectionDropped, RemoteError, SSHUnreachable
from tui.core.tasks import spawn

MAX_RESUMES = 3
HEARTBEAT_S = 5.0  # a step silent this long says it is still running (uv can say nothing for ~20 s)




class SetupRunner:
    """Runs `steps` with one `SetupContext`; events go to `on_event` (called on the event loop)."""

    def __init__(
        self,
        settings: SetupSpec,
        executor: Executor,
        on_event: Callable[[SetupEvent], None],
        *,
        steps: Sequence[Step] | None = None,
        approve_format: ApproveFormat | None = None,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.steps = list(steps) if steps is not None else default_steps()
        self.ctx = SetupContext(settings, executor, approve_format)
        self.on_event = on_event
        self.heartbeat_s = heartbeat_s

    async def run(self) -> PipelineFinished:
        t0 = time.monotonic()
        results: list[StepResult] = []
        error: Exception | None = None
        total = len(self.steps)
        for index, step in enumerate(self.steps):
            self.on_event(StepStarted(step.name, index, total, step.describe(self.ctx)))
            result, error = await self._run_step(step)
            results.append(result)
            self.on_event(StepFinished(result))
            if result.status is StepStatus.FAILED:
                break
        finished = PipelineFinished(
            _summary(results, self.steps, time.monotonic() - t0, self.ctx.sh.dry_run),
            time.monotonic() - t0,
            ok=error is None,
            results=tuple(results),
            error=error,
        )
        self.on_event(finished)
        return finished

    async def _run_step(self, step: Step) -> tuple[StepResult, Exception | None]:
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        spoke = [time.monotonic()]  # when the step last said something

        def out(lines: list[str]) -> None:
            spoke[0] = time.monotonic()
            tail.extend(lines)
            self.on_event(OutputLines(step.name, tuple(lines)))

        self.ctx.out = out
        self.ctx.sh.notice = out  # what the VM's setup lock did (waited for, or stopped, an earlier run's command)
        beat = None if self.ctx.sh.dry_run else spawn(self._heartbeat(step.name, spoke),
                                                      name=f"the heartbeat of setup step {step.name}", emit=None)
        try:
            return await self._attempts(step, out, tail)
        finally:
            if beat is not None:
                beat.cancel()

    async def _heartbeat(self, step: str, spoke: list[float]) -> None:
        """While the step is silent, say every `heartbeat_s` that it is still running — an event only: neither the
        step's output tail nor the command log holds it."""
        t0 = said = time.monotonic()
        while True:
            await asyncio.sleep(self.heartbeat_s / 5)
            now = time.monotonic()
            if now - max(spoke[0], said) >= self.heartbeat_s:
                said = now
                self.on_event(OutputLines(step, (f"… still running ({now - t0:.0f} s)",)))

    async def _attempts(self, step: Step, out: Callable[[list[str]], None],
                        tail: deque[str]) -> tuple[StepResult, Exception | None]:
        """Check, then apply the step; after a dropped connection reconnect and check again (up to MAX_RESUMES)."""
        t0 = time.monotonic()
        attempt = 0
        while True:
            try:
                if await step.check(self.ctx):
                    return StepResult(
                        step.name, StepStatus.SKIPPED, time.monotonic() - t0, output_tail=tuple(tail)
                    ), None
                await step.apply(self.ctx)
                return StepResult(step.name, StepStatus.DONE, time.monotonic() - t0, output_tail=tuple(tail)), None
            except (ConnectionDropped, SSHUnreachable) as exc:
                if step.name == "ssh" or attempt >= MAX_RESUMES:
                    return self._failed(step, t0, tail, exc), exc
                attempt += 1
                self.on_event(Reconnecting(step.name, attempt, str(exc)))
                out([f"connection lost ({exc}); reconnecting, then checking this step again"])
                try:
                    await self.ctx.sh.reconnect(self.ctx.settings.reconnect_seconds)
                except RemoteError as again:
                    return self._failed(step, t0, tail, again), again
            except (StepFailed, RemoteError) as exc:  # RemoteError includes host key and auth errors
                return self._failed(step, t0, tail, exc), exc

    @staticmethod
    def _failed(step: Step, t0: float, tail: deque[str], exc: Exception) -> StepResult:
        command = ""
        output = tuple(tail)
        if isinstance(exc, StepFailed) and exc.result is not None:
            command = exc.result.command
            output = exc.result.tail or output
        return StepResult(step.name, StepStatus.FAILED, time.monotonic() - t0, command, output, str(exc))


def _summary(results: list[StepResult], steps: Sequence[Step], seconds: float, dry_run: bool) -> str:
    if dry_run:
        return f"Dry run: {len(steps)} steps, nothing was run"
    changing = {s.name for s in steps if s.changes}
    done = [r.step for r in results if r.status is StepStatus.DONE and r.step in changing]
    skipped = [r.step for r in results if r.status is StepStatus.SKIPPED]
    failed = [r for r in results if r.status is StepStatus.FAILED]
    if failed:
        return f"Setup failed at step '{failed[0].step}' after {seconds:.1f} s: {failed[0].error}"
    parts = [f"did {', '.join(done)}" if done else "nothing to do"]
    if skipped:
        parts.append(f"already done: {', '.join(skipped)}")
    return f"Setup finished in {seconds:.1f} s: " + "; ".join(parts)


async def dry_run(settings: SetupSpec, steps: Sequence[Step] | None = None) -> str:
    """The exact commands setup would run (checks answer "not done"), as printable text."""
    out: list[str] = []
    executor = DryRunExecutor(settings.env, on_command=lambda c: out.extend([*c.splitlines(), ""]))

    def on_event(event: SetupEvent) -> None:
        if isinstance(event, StepStarted):
            out.append(f"# [{event.index + 1}/{event.total}] {event.step}: {event.description}")

    async def yes(device: str, size: str) -> bool:
        return True

    await SetupRunner(settings, executor, on_event, steps=steps, approve_format=yes).run()
    return "\n".join(out).rstrip() + "\n"
