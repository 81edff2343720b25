"""Where openstacksdk finds clouds.yaml, and a check that names a file it cannot parse.

openstacksdk skips a clouds.yaml that is not valid YAML and then says "cloud not found"; the app and the CLI both
open their cloud with `open_cloud`, which then checks the files, so the user reads the file, its line and the YAML
error instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from tui.core.cloud.base import Cloud, CloudError, InvalidInput


def open_cloud(cloud: str, clouds_yaml: str = "") -> Cloud:
    """The named cloud of clouds.yaml, authenticated (blocking: imports openstacksdk); CloudError otherwise."""
    from tui.core.cloud.openstack_cloud import OpenStackCloud

    try:
        return OpenStackCloud.from_config(cloud, clouds_yaml or None)
    except InvalidInput:  # no such entry, or no file: a file openstacksdk could not parse says why
        check_clouds_yaml(clouds_yaml)
        raise
    except CloudError as exc:
        missing = _missing_options(exc)
        if not missing:
            raise
        where = _file_with(cloud, clouds_yaml) or "clouds.yaml"
        keys = ", ".join(f"clouds.{cloud}.auth.{name}" for name in missing)
        raise InvalidInput(f"{where}: {keys} is missing (the cloud's sign-in needs it)",
                           "add it to that entry; Horizon's API Access page downloads a complete clouds.yaml") from None


def _missing_options(exc: BaseException) -> list[str]:
    """The option names of a keystoneauth MissingRequiredOptions under `exc` (auth_url, ...), else []."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            break
        if type(seen).__name__ == "MissingRequiredOptions":
            return [str(getattr(o, "dest", o)) for o in getattr(seen, "options", [])]
        seen = seen.__cause__ or seen.__context__
    return []


def _file_with(cloud: str, configured: str) -> str:
    """The first clouds.yaml (in openstacksdk's order) that has the entry `cloud`."""
    import yaml

    for path in clouds_yaml_candidates(configured):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and isinstance(data.get("clouds"), dict) and cloud in data["clouds"]:
            return str(path)
    return ""


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
            from tui.core.config import yaml_problem

            line, problem = yaml_problem(exc)
            where = f"{path}:{line}" if line else str(path)
            raise InvalidInput(f"{where}: not valid YAML: {problem}",
                               "or download a working clouds.yaml from Horizon's API Access page") from None
