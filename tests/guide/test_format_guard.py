"""The volume step formats a device only if it has no filesystem when the formatting command runs (issue 19 item 2):
two setups of one VM at once take turns per command, so the other may have formatted — and filled — it since this
run looked. Run with the real blkid and mkfs.ext4 on image files (what they do on a block device)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tui.core.guide.steps import format_if_empty

pytestmark = pytest.mark.skipif(not (shutil.which("blkid") and shutil.which("mkfs.ext4")),
                                reason="needs blkid and mkfs.ext4 (e2fsprogs)")


def uuid(image: Path) -> str:
    return subprocess.run(["blkid", "-s", "UUID", "-o", "value", str(image)], capture_output=True, text=True,
                          check=False).stdout.strip()


def run(command: str) -> None:
    subprocess.run(["bash", "-c", "set -e\nSUDO=\n" + command], check=True, stdin=subprocess.DEVNULL, timeout=60)


def test_an_empty_device_is_formatted_and_a_formatted_one_is_left_alone(tmp_path: Path) -> None:
    image = tmp_path / "vol b.img"
    with image.open("wb") as f:
        f.truncate(8 * 1024 * 1024)
    assert uuid(image) == ""
    run(format_if_empty(str(image)))
    first = uuid(image)
    assert first  # formatted
    run(format_if_empty(str(image)))  # the other run's command, decided when the device was still empty
    assert uuid(image) == first  # not formatted again
