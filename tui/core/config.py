"""Profiles: a YAML file -> frozen dataclasses.

Lookup order: ``--config PATH``, then ``$CADES_TUI_CONFIG``, then ``$XDG_CONFIG_HOME/cades-tui/config.yaml``;
with none of them the built-in defaults apply. Credentials are never read here: the profile only names a
clouds.yaml entry (``cloud:``); ``--cloud`` and ``$OS_CLOUD`` override it.

Every problem becomes one ``ConfigError`` whose text names ``file:line``, the key, what was found and what is
expected, e.g. ``config.yaml:7: jupyter.port: expected an integer 1-65535, got 'abc'``.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.core import paths

if TYPE_CHECKING:
    import yaml

ENV_CONFIG = "CADES_TUI_CONFIG"


class ConfigError(Exception):
    """A bad profile: the message is one line meant for the user."""


INSTALL_METHODS = ("uv", "miniforge", "anaconda")
JUPYTER_APPS = ("lab", "notebook")


@dataclass(frozen=True, slots=True)
class LaunchDefaults:
    image: str = ""  # empty: the newest Ubuntu image
    flavor: str = ""  # empty: the smallest m1 flavor that fits the quota
    volume_size_gb: int = 16  # the guide: 16 GB or larger
    key_name: str = ""  # empty: the app's own key pair, generated once
    network: str = ""  # empty: the project's only (or first non-external) network
    delete_volume_on_termination: bool = False


@dataclass(frozen=True, slots=True)
class SSHSettings:
    user: str = "ubuntu"
    key_path: str = ""  # empty: the key remembered for the instance, else the app's own key
    use_ssh_config: bool = True
    jump_host: str = ""  # e.g. "me@login.example.org"
    keepalive_s: int = 15


@dataclass(frozen=True, slots=True)
class SetupSettings:
    install_method: str = "uv"
    env_path: str = "~/jupyter-env"
    extra_packages: tuple[str, ...] = ("numpy", "scipy", "pandas", "matplotlib")
    installer_url: str = ""  # miniforge/anaconda installer; empty: the official one for the method


@dataclass(frozen=True, slots=True)
class JupyterSettings:
    app: str = "lab"
    port: int = 8889  # the remote port, as in the guide
    local_port: int = 8889  # preferred local tunnel port; another free one is chosen when taken
    workspace: str = "~/work"
    session_name: str = "jupyter"
    auto_reopen_tunnels: bool = True


@dataclass(frozen=True, slots=True)
class IdleSettings:
    resize_after_hours: float = 24.0
    stop_after_hours: float = 72.0
    delete_after_days: float = 30.0


@dataclass(frozen=True, slots=True)
class UISettings:
    refresh_s: float = 5.0
    theme: str = "textual-dark"


@dataclass(frozen=True, slots=True)
class Settings:
    cloud: str = "sandbox"
    clouds_yaml: str = ""  # empty: openstacksdk's usual lookup (OS_CLIENT_CONFIG_FILE, ./, ~/.config/openstack, /etc)
    launch: LaunchDefaults = field(default_factory=LaunchDefaults)
    ssh: SSHSettings = field(default_factory=SSHSettings)
    setup: SetupSettings = field(default_factory=SetupSettings)
    jupyter: JupyterSettings = field(default_factory=JupyterSettings)
    idle: IdleSettings = field(default_factory=IdleSettings)
    ui: UISettings = field(default_factory=UISettings)
    keymap: dict[str, str] = field(default_factory=dict)  # action id -> keys, e.g. {"launch": "ctrl+n"}
    source: str = "built-in defaults"  # where these settings came from (for messages)

    def with_cloud(self, cloud: str, clouds_yaml: str = "") -> Settings:
        return dataclasses.replace(self, cloud=cloud, clouds_yaml=clouds_yaml or self.clouds_yaml)


# Field checks beyond the type: key path -> (predicate, what is expected)
_CHECKS: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "launch.volume_size_gb": (lambda v: 1 <= v <= 16384, "an integer number of GB, at least 1 (the guide: 16+)"),
    "setup.install_method": (lambda v: v in INSTALL_METHODS, "one of " + ", ".join(INSTALL_METHODS)),
    "jupyter.app": (lambda v: v in JUPYTER_APPS, "one of " + ", ".join(JUPYTER_APPS)),
    "jupyter.port": (lambda v: 1 <= v <= 65535, "an integer port 1-65535"),
    "jupyter.local_port": (lambda v: 0 <= v <= 65535, "an integer port 0-65535 (0: any free port)"),
    "ssh.keepalive_s": (lambda v: 0 <= v <= 3600, "seconds between keepalives, 0-3600"),
    "ui.refresh_s": (lambda v: 0.5 <= v <= 3600, "seconds between refreshes, 0.5-3600"),
    "cloud": (lambda v: bool(v.strip()), "the name of a clouds.yaml entry"),
}


def default_path() -> Path:
    return paths.config_dir() / "config.yaml"


def find_config(explicit: str | None) -> Path | None:
    """The profile to read: --config, then $CADES_TUI_CONFIG, then the XDG file if it exists."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env).expanduser()
    candidate = default_path()
    return candidate if candidate.is_file() else None


def load_settings(explicit: str | None = None, cloud: str | None = None) -> Settings:
    """Read the profile, then apply the cloud override (--cloud, else $OS_CLOUD)."""
    path = find_config(explicit)
    settings = Settings() if path is None else load_file(path)
    override = cloud or os.environ.get("OS_CLOUD")
    if override:
        settings = dataclasses.replace(settings, cloud=override)
    return settings


def load_file(path: Path) -> Settings:
    import yaml  # only when there is a file to read: the app's first frame does not wait for it

    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{name}: file not found — create it from config/cades-tui.example.yaml or drop --config"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read ({exc})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name}:{mark.line + 1}" if mark else name
        problem = exc.problem or exc.context
        raise ConfigError(f"{where}: malformed YAML: {problem} — check indentation and quoting") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: malformed YAML: {exc}") from None
    if node is None:
        return dataclasses.replace(Settings(), source=name)
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{name}:{node.start_mark.line + 1}: expected a mapping of settings at the top level")
    values = _build(Settings, node, name, prefix="")
    return dataclasses.replace(Settings(**values), source=name)


def _build(cls: type, node: yaml.MappingNode, file: str, prefix: str) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = key_node.value
        path = f"{prefix}{key}"
        line = f"{file}:{key_node.start_mark.line + 1}"
        if key not in known:
            close = ", ".join(sorted(known))
            raise ConfigError(f"{line}: unknown key '{path}' — expected one of: {close}")
        out[key] = _convert(hints[key], value_node, file, path)
        check = _CHECKS.get(path)
        if check and not check[0](out[key]):
            raise ConfigError(f"{file}:{value_node.start_mark.line + 1}: {path}: expected {check[1]}, "
                              f"got {value_node.value!r}")
    return out


def _scalar(node: yaml.Node) -> Any:
    """The Python value of a scalar node with YAML's safe typing (int, float, bool, null, str)."""
    import yaml

    if not isinstance(node, yaml.ScalarNode):
        return None
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _convert(hint: Any, node: yaml.Node, file: str, path: str) -> Any:
    import yaml

    line = f"{file}:{node.start_mark.line + 1}"
    is_null = isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if is_null:
            return hint()  # an empty section: its defaults
        if not isinstance(node, yaml.MappingNode):
            raise ConfigError(f"{line}: {path}: expected a mapping of settings, got {_show(node)}")
        return hint(**_build(hint, node, file, prefix=path + "."))
    origin = typing.get_origin(hint)
    if origin in (dict, tuple) and is_null:
        return origin()
    if origin is dict:
        if not isinstance(node, yaml.MappingNode):
            raise ConfigError(f"{line}: {path}: expected a mapping like 'launch: ctrl+n', got {_show(node)}")
        result: dict[str, str] = {}
        for k, v in node.value:
            value = _scalar(v)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{file}:{v.start_mark.line + 1}: {path}.{k.value}: expected keys as text "
                                  f"like 'ctrl+n' or 'n,f2', got {_show(v)}")
            result[str(k.value)] = value
        return result
    if origin is tuple:
        if not isinstance(node, yaml.SequenceNode):
            raise ConfigError(f"{line}: {path}: expected a list like [numpy, pandas], got {_show(node)}")
        items = []
        for item in node.value:
            value = _scalar(item)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{file}:{item.start_mark.line + 1}: {path}: expected text items, got {_show(item)}")
            items.append(value)
        return tuple(items)
    value = _scalar(node)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{line}: {path}: expected true or false, got {_show(node)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{line}: {path}: expected an integer, got {_show(node)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{line}: {path}: expected a number, got {_show(node)}")
        return float(value)
    if hint is str:
        if value is None:
            return ""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"{line}: {path}: expected text, got {_show(node)}")
        return str(value)
    raise ConfigError(f"{line}: {path}: unsupported setting type")  # pragma: no cover - a bug in Settings


def _show(node: yaml.Node) -> str:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return repr(node.value)
