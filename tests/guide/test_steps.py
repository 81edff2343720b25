"""Steps and settings without a host: dry run, quoting, parsing, validation."""

from __future__ import annotations

import shlex

import pytest

from tui.core.guide import InstallMethod, SetupSpec, VolumeSpec, dry_run
from tui.core.guide.steps import HostFacts, abspath, dist_names, parse_lsblk, rpath


async def test_dry_run_prints_the_exact_commands() -> None:
    settings = SetupSpec(
        extra_packages=("pandas>=2",), workspace="~/ws; rm -rf /", env=(("UV_CACHE_DIR", "/tmp/uv cache"),)
    )
    text = await dry_run(settings)
    assert text.count("# [") == 8 and "# [4/8] python: Install Jupyter and 5 packages" in text
    assert "# [8/8] autostop: Install the autostop watchdog" in text
    assert "export UV_CACHE_DIR='/tmp/uv cache'" in text
    assert (
        '"$UV" pip install --python "$HOME"/jupyter-env/bin/python '
        "jupyterlab notebook ipywidgets nbconvert 'pandas>=2'" in text
    )
    assert "mkdir -p \"$HOME\"/'ws; rm -rf /'" in text  # quoted, not run
    assert "command -v screen || command -v tmux" in text  # checks are printed too
    assert "no extra volume attached" not in text  # that is output, not a command


async def test_dry_run_conda_and_volume() -> None:
    settings = SetupSpec(
        method=InstallMethod.MINIFORGE, volume=VolumeSpec("vol-1234", device="/dev/vdb", mount_point="/data")
    )
    text = await dry_run(settings)
    assert "Miniforge3-{os}-{arch}.sh" in text  # unknown until detected on the instance
    assert 'bash "$tmp/installer.sh" -b -p "$HOME"/miniforge3' in text
    assert "$SUDO mkfs.ext4 -q /dev/vdb" in text and "tee -a /etc/fstab" in text


def test_settings_validation() -> None:
    with pytest.raises(ValueError, match="option"):
        SetupSpec(extra_packages=("--index-url=http://evil",))
    with pytest.raises(ValueError, match="variable"):
        SetupSpec(env=(("BAD NAME", "x"),))
    with pytest.raises(ValueError, match="port"):
        SetupSpec(jupyter_port=70000)
    for home in ("~", "~/", "/"):
        with pytest.raises(ValueError, match="env_path"):
            SetupSpec(env_path=home)
    with pytest.raises(ValueError, match="mount point"):
        VolumeSpec("v", mount_point="/data; reboot")
    s = SetupSpec(method="miniforge", packages=("a", "b"), extra_packages=("b", "c"))  # type: ignore[arg-type]
    assert s.method is InstallMethod.MINIFORGE and s.prefix == "~/miniforge3"
    assert s.all_packages == ("a", "b", "c")
    assert s.installer("Linux", "aarch64").endswith("Miniforge3-Linux-aarch64.sh")


def test_paths_and_parsers() -> None:
    assert rpath("~/a b") == "\"$HOME\"/'a b'" and rpath("/opt/x") == "/opt/x" and rpath("rel") == '"$HOME"/rel'
    assert rpath("~") == '"$HOME"' and shlex.split(rpath("/a'b")) == ["/a'b"]
    assert abspath("~/ws", "/home/u") == "/home/u/ws" and abspath("/w", "/home/u") == "/w"
    assert dist_names(("pandas>=2", "scikit-learn[all]", "git+https://x/y", "./local", "numpy")) == [
        "pandas",
        "scikit-learn",
        "numpy",
    ]
    facts = HostFacts.parse("os=Linux\narch=x86_64\nhome=/home/ubuntu\nuser=ubuntu\ndistro=ubuntu 24.04\npkg=apt-get\n")
    assert facts == HostFacts("Linux", "x86_64", "ubuntu 24.04", "/home/ubuntu", "ubuntu", "apt-get")
    lsblk = (
        '{"blockdevices": [{"path": "/dev/vdb", "size": 10737418240, "fstype": null, "mountpoints": [null],'
        ' "type": "disk"}]}'
    )
    dev = parse_lsblk(lsblk)
    assert dev is not None and dev.path == "/dev/vdb" and dev.fstype == "" and dev.mountpoints == ()
    mounted = '{"blockdevices": [{"path": "/dev/vdb", "size": 1, "fstype": "ext4", "mountpoints": ["/data"]}]}'
    assert parse_lsblk(mounted).mountpoints == ("/data",)  # type: ignore[union-attr]
    assert parse_lsblk("not json") is None and parse_lsblk('{"blockdevices": []}') is None
