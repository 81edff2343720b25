"""The setup pipeline for real: OpenSSH sshd hosts (SSHHost), Jupyter installed from PyPI with uv."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from tui.core.guide import OutputLines, Reconnecting, SetupRunner, SetupSpec, StepFinished, StepStarted, VolumeSpec
from tui.core.guide.steps import CreateWorkspace, DetectSystem, MountVolume, WaitForSSH, WriteJupyterConfig
from tui.core.models import StepStatus
from tui.core.remote.connection import HostKeyUnknown
from tui.sandbox.sshhost import SSHHost

from .conftest import Rig

INSTALL_MARKERS = ("pip install", "apt-get install", "dnf install", "mkdir -p", "cat >", "installer.sh")


def statuses(rig: Rig) -> dict[str, StepStatus]:
    return {e.result.step: e.result.status for e in rig.events if isinstance(e, StepFinished)}


def started(rig: Rig) -> list[str]:
    return [e.step for e in rig.events if isinstance(e, StepStarted)]


@pytest.mark.slow
async def test_full_uv_pipeline_then_idempotent_rerun(
    rig: Rig, ssh_host: SSHHost, pkg_cache: tuple[tuple[str, str], ...]
) -> None:
    settings = SetupSpec(env=pkg_cache, jupyter_port=8899)
    first = await rig.setup(settings)
    assert first.ok, first.summary
    assert statuses(rig) == {
        "ssh": StepStatus.DONE,
        "detect": StepStatus.DONE,
        "screen": StepStatus.SKIPPED,  # installed on this machine
        "python": StepStatus.DONE,
        "jupyter-config": StepStatus.DONE,
        "workspace": StepStatus.DONE,
        "volume": StepStatus.SKIPPED,
        "autostop": StepStatus.DONE,  # the watchdog installed (not armed: the profile's autostop is off)
    }
    assert [e.index for e in rig.events if isinstance(e, StepStarted)] == list(range(8))
    lines = [line for e in rig.events if isinstance(e, OutputLines) and e.step == "python" for line in e.lines]
    assert any("jupyterlab==" in line for line in lines)  # uv's output streamed
    home = ssh_host.home
    assert (home / "jupyter-env" / "bin" / "jupyter-lab").exists()
    config = json.loads((home / ".jupyter" / "jupyter_server_config.json").read_text())
    assert config == {
        "ServerApp": {"ip": "127.0.0.1", "open_browser": False, "port": 8899, "root_dir": str(home / "workspace")}
    }
    assert (home / "workspace").is_dir()
    assert first.summary.startswith("Setup finished in")

    # Run again: every check passes, nothing is installed or written, and it takes well under 3 s.
    offset = len(rig.log.read())
    second = await rig.setup(settings)
    assert second.ok and second.seconds < 3, second.summary
    changed = {k: v for k, v in statuses(rig).items() if v is not StepStatus.SKIPPED}
    assert changed == {"detect": StepStatus.DONE}  # the read-only probe
    rerun_log = rig.log.read()[offset:]
    assert rerun_log and not any(m in rerun_log for m in INSTALL_MARKERS), rerun_log
    assert "nothing to do" in second.summary


@pytest.mark.slow
async def test_resume_after_sshd_killed_mid_install(
    rig: Rig, ssh_host: SSHHost, pkg_cache: tuple[tuple[str, str], ...], uv_on_path: tuple[tuple[str, str], ...]
) -> None:
    loop = asyncio.get_running_loop()
    cut: list[bool] = []

    def on_event(event: object) -> None:
        rig.events.append(event)  # type: ignore[arg-type]
        if isinstance(event, OutputLines) and event.step == "python" and not cut:
            cut.append(True)
            loop.call_soon(ssh_host.kill)  # network cut in the middle of the install
            loop.call_later(1.0, ssh_host.start)

    # small, and uv from PATH: the full install (venv + pip install uv + Jupyter) is tested above
    settings = SetupSpec(env=pkg_cache + uv_on_path, packages=("iniconfig",))
    result = await SetupRunner(settings, rig.executor(settings), on_event).run()
    assert cut and result.ok, result.summary
    assert any(isinstance(e, Reconnecting) and e.step == "python" for e in rig.events)
    assert started(rig) == ["ssh", "detect", "screen", "python", "jupyter-config", "workspace", "volume",
                            "autostop"]
    # re-checked after the reconnect: re-applied, or already done when the cut-off command finished on the VM
    assert statuses(rig)["python"] in (StepStatus.DONE, StepStatus.SKIPPED)
    log = rig.log.read()
    assert log.count("exit=lost") >= 1 and log.count('echo "os=$(uname -s)"') == 1  # earlier steps not redone
    assert list((ssh_host.home / "jupyter-env" / "lib").glob("python3*/site-packages/iniconfig"))


@pytest.mark.slow
async def test_cut_without_quick_return_fails_then_rerun_completes(
    rig: Rig, ssh_host: SSHHost, pkg_cache: tuple[tuple[str, str], ...], uv_on_path: tuple[tuple[str, str], ...]
) -> None:
    loop = asyncio.get_running_loop()
    settings = SetupSpec(env=pkg_cache + uv_on_path, reconnect_seconds=1.0, packages=("iniconfig",))
    cut: list[bool] = []

    def on_event(event: object) -> None:
        rig.events.append(event)  # type: ignore[arg-type]
        if isinstance(event, StepStarted) and event.step == "python" and not cut:
            cut.append(True)
            loop.call_soon(ssh_host.kill)

    first = await SetupRunner(settings, rig.executor(settings), on_event).run()
    assert not first.ok and first.results[-1].step == "python"
    assert "Setup failed at step 'python'" in first.summary and "cannot reach" in first.summary
    ssh_host.start()
    second = await rig.setup(settings)
    assert second.ok, second.summary
    assert statuses(rig)["ssh"] is StepStatus.DONE and statuses(rig)["screen"] is StepStatus.SKIPPED
    assert statuses(rig)["python"] is StepStatus.DONE


@pytest.mark.slow
async def test_failing_step_is_reported_and_stops(
    rig: Rig, pkg_cache: tuple[tuple[str, str], ...], uv_on_path: tuple[tuple[str, str], ...]
) -> None:
    bogus = "cades-tui-no-such-package-7f3a"
    settings = SetupSpec(env=pkg_cache + uv_on_path, packages=("iniconfig",), extra_packages=(bogus,))
    result = await rig.setup(settings)
    assert not result.ok
    failed = result.results[-1]
    assert failed.step == "python" and failed.status is StepStatus.FAILED
    assert "pip install --python" in failed.command and bogus in failed.command
    assert any(bogus in line for line in failed.output_tail), failed.output_tail
    assert "exit" in failed.error
    assert started(rig) == ["ssh", "detect", "screen", "python"]  # later steps never started
    assert "Setup failed at step 'python'" in result.summary


async def test_wait_for_ssh_until_the_host_comes_up(rig: Rig, ssh_host: SSHHost) -> None:
    ssh_host.kill()
    asyncio.get_running_loop().call_later(1.0, ssh_host.start)
    result = await rig.setup(SetupSpec(ssh_wait_seconds=20), steps=[WaitForSSH(), CreateWorkspace()])
    assert result.ok, result.summary
    assert statuses(rig) == {"ssh": StepStatus.DONE, "workspace": StepStatus.DONE}


async def test_hostile_paths_are_quoted_and_token_auth_stays_on(rig: Rig, ssh_host: SSHHost) -> None:
    ws = "~/my ws; touch pwned; $(touch pwned2)"
    jdir = ssh_host.home / ".jupyter"
    jdir.mkdir()
    (jdir / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"token": "", "allow_origin": "x"}, "IdentityProvider": {"token": ""}})
    )
    steps = [WaitForSSH(), DetectSystem(), WriteJupyterConfig(), CreateWorkspace()]
    settings = SetupSpec(workspace=ws)
    assert (await rig.setup(settings, steps=steps)).ok
    created = ssh_host.home / "my ws; touch pwned; $(touch pwned2)"
    assert created.is_dir()
    assert not (ssh_host.home / "pwned").exists() and not (ssh_host.home / "pwned2").exists()
    config = json.loads((jdir / "jupyter_server_config.json").read_text())
    assert config["ServerApp"]["root_dir"] == str(created)
    assert config["ServerApp"]["allow_origin"] == "x"  # the user's other settings are kept
    assert "token" not in config["ServerApp"] and "token" not in config["IdentityProvider"]  # auth on
    assert (await rig.setup(settings, steps=steps)).ok
    assert statuses(rig)["jupyter-config"] is StepStatus.SKIPPED


async def test_volume_step_without_and_with_a_missing_device(rig: Rig) -> None:
    steps = [WaitForSSH(), MountVolume()]
    result = await rig.setup(SetupSpec(), steps=steps)
    assert statuses(rig)["volume"] is StepStatus.SKIPPED
    assert "no extra volume attached" in result.results[-1].output_tail
    vol = VolumeSpec("0d7c2a5e-6f4b-4c55-9a0b-3d1e2f3a4b5c", mount_point="/data")
    result = await rig.setup(dataclasses.replace(SetupSpec(), volume=vol), steps=steps)
    assert not result.ok and "no device for it was found" in result.results[-1].error


async def test_unknown_host_key_stops_setup_until_accepted(rig: Rig, ssh_host: SSHHost) -> None:
    rig.target.known_hosts.write_text("")
    steps = [WaitForSSH(), CreateWorkspace()]
    result = await rig.setup(SetupSpec(), steps=steps)
    assert not result.ok and isinstance(result.error, HostKeyUnknown)
    assert result.error.fingerprint == ssh_host.host_key_fingerprint
    assert ssh_host.host_key_fingerprint in result.summary
    result.error.accept()  # the UI asked the user
    assert (await rig.setup(SetupSpec(), steps=steps)).ok
