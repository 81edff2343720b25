"""Where openstacksdk finds clouds.yaml, and a check that names a file it cannot parse.

openstacksdk skips a clouds.yaml that is not valid YAML and then says "cloud not found"; the app and the CLI both
open their cloud with `open_cloud`, which then checks the files, so the user reads the file, its line and the YAML
error instead. Likewise an entry openstacksdk cannot use ("'int' object has no attribute 'get'",
"MissingRequiredOptions: … auth_url", "The plugin bogus could not be found") is bad input, exit 2, said with the
file, line and key (`check_entry`); a cloud that was reached and answered keeps its own message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.core.cloud.base import AuthError, Cloud, CloudError, InvalidInput

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
    except CloudError as exc:
        if exc.status is not None or isinstance(exc, AuthError):
            raise  # the cloud answered: the entry reached it
        # a malformed entry is bad input (exit 2), named by file:line and key
        check_entry(cloud, clouds_yaml, secret_missing="auth secret" in _chain_text(exc))
        missing = _missing_options(exc)
        if not missing:
            raise
        where = _file_with(cloud, clouds_yaml) or "clouds.yaml"
        keys = ", ".join(f"clouds.{cloud}.auth.{name}" for name in missing)
        raise InvalidInput(f"{where}: {keys} is missing (the cloud's sign-in needs it)", _FIX) from None


_FIX = "fix that entry; Horizon's API Access page downloads a complete clouds.yaml"


def check_entry(cloud: str, configured: str = "", secret_missing: bool = False) -> None:
    """InvalidInput naming file:line and key when the clouds.yaml entry `cloud` is not shaped as openstacksdk
    needs (openstacksdk then fails with "'int' object has no attribute 'get'" and the like)."""
    import yaml

    path = _file_with(cloud, configured)
    if not path:
        return
    root = yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    clouds = _get(root, "clouds")
    if not isinstance(clouds, yaml.MappingNode):
        raise _bad(path, clouds, "clouds", "a mapping of named clouds, like clouds: {mycloud: {auth: …}}")
    entry = _get(clouds, cloud)
    where = f"clouds.{cloud}"
    if not isinstance(entry, yaml.MappingNode):
        raise _bad(path, entry, where, "a mapping with auth: (auth_url, credentials) and region_name")
    auth_type_node = _get(entry, "auth_type")
    auth_type = str(auth_type_node.value) if isinstance(auth_type_node, yaml.ScalarNode) else "password"
    if auth_type_node is not None:
        from keystoneauth1 import loading

        known = sorted(loading.get_available_plugin_names())
        if auth_type not in known:
            raise _bad(path, auth_type_node, f"{where}.auth_type", "one of " + ", ".join(known))
    auth = _get(entry, "auth")
    if auth is None:
        return  # openstacksdk names what is missing
    if not isinstance(auth, yaml.MappingNode):
        raise _bad(path, auth, f"{where}.auth", "a mapping like {auth_url: https://…/v3, username: …}")
    url = _get(auth, "auth_url")
    if url is not None and (url.tag != "tag:yaml.org,2002:str" or not str(url.value).startswith(("http://",
                                                                                                 "https://"))):
        raise _bad(path, url, f"{where}.auth.auth_url", "the Identity (Keystone) URL, like "
                   "https://cloud.example.org:5000/v3")
    if secret_missing and auth_type == "v3applicationcredential":
        raise InvalidInput(f"{path}:{auth.start_mark.line + 1}: {where}.auth.application_credential_secret is "
                           "missing (auth_type v3applicationcredential signs in with it)", _FIX)


def _get(node: Any, key: str) -> Any:
    """The value node of `key` in a mapping node (None when `node` is not a mapping or has no such key)."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return None
    return next((v for k, v in node.value if str(k.value) == key), None)


def _bad(path: str, node: Any, key: str, expected: str) -> InvalidInput:
    import yaml

    line = f":{node.start_mark.line + 1}" if isinstance(node, yaml.Node) else ""
    shown = repr(node.value) if isinstance(node, yaml.ScalarNode) else "a list" if isinstance(
        node, yaml.SequenceNode) else "a mapping" if isinstance(node, yaml.MappingNode) else "nothing"
    return InvalidInput(f"{path}{line}: {key}: expected {expected}, got {shown}", _FIX)


def _chain_text(exc: BaseException) -> str:
    """The messages of `exc` and the exceptions it was raised from."""
    texts, seen = [], exc
    for _ in range(6):
        texts.append(str(seen))
        if (nxt := seen.__cause__ or seen.__context__) is None:
            break
        seen = nxt
    return " ".join(texts)


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
        if isinstance(data, dict) and "clouds" in data and (not isinstance(data["clouds"], dict)
                                                            or cloud in data["clouds"]):
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
