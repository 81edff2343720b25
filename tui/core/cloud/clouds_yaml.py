"""Where openstacksdk finds clouds.yaml, and a check that names a file it cannot parse.

openstacksdk skips a clouds.yaml that is not valid YAML and then says "cloud not found"; the app and the CLI both
open their cloud with `open_cloud`, which then checks the files, so the user reads the file, its line and the YAML
error instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from tui.core.cloud.base import Cloud, InvalidInput

if TYPE_CHECKING:
    from tui.core.cloud.signin import Ask


def open_cloud(cloud: str, clouds_yaml: str = "", ask: Ask | None = None) -> Cloud:
    """The named cloud of clouds.yaml, signed in with any auth type (blocking: imports openstacksdk); CloudError
    otherwise. `ask` answers for a password or TOTP passcode clouds.yaml does not hold (`tui.core.cloud.signin`)."""
    from tui.core.cloud.openstack_cloud import OpenStackCloud

    try:
        return OpenStackCloud.from_config(cloud, clouds_yaml or None, ask=ask)
    except InvalidInput:  # no such entry, or no file: a file openstacksdk could not parse says why
        check_clouds_yaml(clouds_yaml)
        raise


def clouds_yaml_candidates(configured: str = "") -> list[Path]:
    """Where openstacksdk looks for clouds.yaml, in its order (the profile's file first when it names one)."""
    if configured:
        return [Path(configured).expanduser()]
    found = [Path(p).expanduser() for p in [os.environ.get("OS_CLIENT_CONFIG_FILE", "")] if p]
    found += [Path.cwd() / "clouds.yaml", Path.home() / ".config/openstack/clouds.yaml",
              Path("/etc/openstack/clouds.yaml")]
    return found


def check_clouds_yaml(configured: str = "") -> None:
    """Raise InvalidInput naming the file, line and YAML error of the first clouds.yaml that does not parse."""
    import yaml

    for path in clouds_yaml_candidates(configured):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise InvalidInput(f"{where}: not valid YAML ({problem})",
                               "fix that line; Horizon's API Access page downloads a working clouds.yaml") from None
