"""The guide's setup steps (its steps 2-3: install Python + Jupyter, configure it) as a resumable, streamed pipeline."""

from tui.core.events import OutputLines, PipelineFinished, Reconnecting, SetupEvent, StepFinished, StepStarted
from tui.core.guide.executor import DryRunExecutor, Executor, SSHExecutor
from tui.core.guide.runner import SetupRunner, dry_run
from tui.core.guide.settings import InstallMethod, SetupSpec, VolumeSpec
from tui.core.guide.steps import SetupContext, Step, StepFailed, default_steps

__all__ = [
    "DryRunExecutor",
    "Executor",
    "InstallMethod",
    "OutputLines",
    "PipelineFinished",
    "Reconnecting",
    "SSHExecutor",
    "SetupContext",
    "SetupEvent",
    "SetupRunner",
    "SetupSpec",
    "Step",
    "StepFailed",
    "StepFinished",
    "StepStarted",
    "VolumeSpec",
    "default_steps",
    "dry_run",
]
