"""Profiles: one YAML file -> one tree of frozen settings, the only place the app's defaults live.

Lookup order: ``--config PATH``, then ``$CADES_TUI_CONFIG``, then ``$XDG_CONFIG_HOME/cades-tui/config.yaml``;
with none of them the built-in defaults apply. Credentials are never read here: the profile only names a
clouds.yaml entry (``cloud:``); ``--cloud`` and ``$OS_CLOUD`` override it.

The app, the CLI, the setup pipeline (``SetupSpec.from_settings``) and Jupyter (``JupyterSpec.from_settings``)
all read this tree; their own settings are views of it with no defaults of their own.

Every problem becomes one ``ConfigError`` whose text names ``file:line``, the key, what was found and what is
expected, e.g. ``config.yaml:7: jupyter.port: expected an integer port 1-65535, got 'abc'``.

The decoder is a small walk over PyYAML's node tree (the nodes carry the line numbers) driven by the dataclasses'
type hints. msgspec and pydantic were weighed and not taken: both would still need this walk for the lines and
the unknown keys (msgspec ignores unknown dataclass keys), and they add ~20 ms (msgspec) and ~150-200 ms
(pydantic: import + schema build) before the first frame when a profile exists.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from tui.core import paths
from tui.core.errors import BadInput

if TYPE_CHECKING:
    import yaml

ENV_CONFIG = "CADES_TUI_CONFIG"


class ConfigError(BadInput):
    """A bad profile: the message is one line meant for the user."""


INSTALL_METHODS = ("uv", "miniforge", "anaconda")
JUPYTER_APPS = ("lab", "notebook")
# Where each install method puts its environment when `setup.env_path` is empty ("~/" is the remote HOME).
ENV_PATHS: Mapping[str, str] = MappingProxyType(
    {"uv": "~/jupyter-env", "miniforge": "~/miniforge3", "anaconda": "~/anaconda3"}
)


MIN_VOLUME_GB = 16  # the guide's boot volume: Ubuntu, Python and Jupyter (~3 GB) and room for work

# Textual's built-in themes, the names `ui.theme` takes. The core never imports textual:
# tests/ui/test_keymap_ids.py keeps this list equal to `App().available_themes` of the installed textual.
THEMES = (
    "ansi-dark", "ansi-light", "atom-one-dark", "atom-one-light", "catppuccin-frappe", "catppuccin-latte",
    "catppuccin-macchiato", "catppuccin-mocha", "dracula", "flexoki", "gruvbox", "monokai", "nord", "rose-pine",
    "rose-pine-dawn", "rose-pine-moon", "solarized-dark", "solarized-light", "textual-dark", "textual-light",
    "tokyo-night",
)

# Textual's key grammar: `[modifier+]...key`, where key is one character or one of these names (Textual's
# `Keys` without modifiers, and its names of the printable characters); tests/ui/test_keymap_ids.py keeps the
# list equal to textual.keys.
KEY_MODIFIERS = ("ctrl", "shift", "alt", "meta", "super", "hyper")
KEY_NAMES = frozenset((
    "ampersand", "apostrophe", "asterisk", "at", "backslash", "backspace", "circumflex_accent", "colon", "comma",
    "ctrl-at", "delete", "dollar_sign", "down", "end", "enter", "equals_sign", "escape", "exclamation_mark",
    *(f"f{n}" for n in range(1, 25)), "full_stop", "grave_accent", "greater_than_sign", "home", "insert", "left",
    "left_curly_bracket", "left_parenthesis", "left_square_bracket", "less_than_sign", "minus", "number_sign",
    "pagedown", "pageup", "percent_sign", "plus", "question_mark", "quotation_mark", "return", "right",
    "right_curly_bracket", "right_parenthesis", "right_square_bracket", "semicolon", "slash", "space", "tab",
    "tilde", "underscore", "up", "vertical_line",
))
_CHAR_NAME_FIXES = {"solidus": "slash", "reverse_solidus": "backslash", "commercial_at": "at",
                    "hyphen_minus": "minus", "plus_sign": "plus", "low_line": "underscore"}


def keymap_defaults() -> Mapping[str, Mapping[str, str]]:
    """screen -> {action id: default keys} (tui.conventions; imported when a profile has a keymap)."""
    from tui.conventions import KEYMAP_DEFAULTS

    return KEYMAP_DEFAULTS


def _close_to(word: str, choices: typing.Iterable[str]) -> str:
    """A "did you mean …? " naming the nearest of `choices` (empty when none is near)."""
    import difflib

    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def key_name(character: str) -> str:
    """Textual's name of the key that types `character` ('?' -> 'question_mark', 'n' -> 'n')."""
    import unicodedata

    if character.isalnum():
        return character
    try:
        name = unicodedata.name(character).lower().replace("-", "_").replace(" ", "_")
    except ValueError:
        name = {"\t": "tab"}.get(character, character)
    return _CHAR_NAME_FIXES.get(name, name)


@dataclass(frozen=True, slots=True)
class LaunchDefaults:
    """What a new instance is launched with."""

    image: str = ""  # empty: the newest Ubuntu image
    flavor: str = ""  # empty: the smallest m1 flavor that fits the quota
    volume_size_gb: int = 16  # 16 GB or larger is recommended for the boot volume
    key_name: str = ""  # empty: the app's own key pair, generated once
    network: str = ""  # empty: the project's only (or first non-external) network
    delete_volume_on_termination: bool = False


@dataclass(frozen=True, slots=True)
class SSHSettings:
    """How the app logs in to an instance."""

    user: str = "ubuntu"
    key_path: str = ""  # empty: the key remembered for the instance, else the app's own key
    use_ssh_config: bool = True
    jump_host: str = ""  # e.g. "me@login.example.org"
    keepalive_s: int = 15  # 0: no keepalives


@dataclass(frozen=True, slots=True)
class SetupSettings:
    """What the setup installs on an instance, and where."""

    install_method: str = "uv"
    env_path: str = ""  # empty: ENV_PATHS[install_method]
    extra_packages: tuple[str, ...] = ("numpy", "scipy", "pandas", "matplotlib")
    installer_url: str = ""  # miniforge/anaconda installer; empty: the official one for the method

    @property
    def prefix(self) -> str:
        """The environment's directory on the instance (may start with `~/`)."""
        return self.env_path or ENV_PATHS[self.install_method]

    @property
    def jupyter_command(self) -> str:
        """The jupyter executable the setup installs."""
        return f"{self.prefix.rstrip('/')}/bin/jupyter"


@dataclass(frozen=True, slots=True)
class JupyterSettings:
    """How Jupyter runs on an instance and is reached from here."""

    app: str = "lab"
    port: int = 8889  # the remote port
    local_port: int = 8889  # preferred local tunnel port; another free one is chosen when taken; 0: any
    workspace: str = "~/workspace"  # the server's root folder, created by the setup
    session_name: str = "jupyter"  # the screen/tmux session that runs the server
    auto_reopen_tunnels: bool = True


@dataclass(frozen=True, slots=True)
class IdleSettings:
    """When an idle instance is nudged: resize, then stop, then delete."""

    resize_after_hours: float = 24.0
    stop_after_hours: float = 72.0
    delete_after_days: float = 30.0


@dataclass(frozen=True, slots=True)
class UISettings:
    """The full-screen app."""

    refresh_s: float = 5.0
    theme: str = "textual-dark"


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """A Dask cluster: a head instance (scheduler, dashboard, Jupyter) and worker instances."""

    workers: int = 2  # worker instances besides the head
    flavor: str = ""  # workers' flavor; empty: the smallest c1.* flavor that fits
    threads_per_worker: int = 0  # 0: one per vCPU
    memory_fraction: float = 0.9  # share of each worker's RAM given to Dask, 0 < f <= 1
    head_worker: bool = True  # the head also runs a worker
    scheduler_port: int = 8786
    dashboard_port: int = 8787
    idle_scale_down_hours: float = 2.0  # idle this long: the workers are removed
    idle_delete_hours: float = 24.0  # idle this long: the whole cluster is deleted
    auto_dashboard_tunnel: bool = True  # open a tunnel to the dashboard once the cluster is up


@dataclass(frozen=True, slots=True)
class AutostopSettings:
    """The watchdog on the VM (`tui.core.autostop`): every instance's default, armed by setup unless `off`."""

    idle: str = "off"  # a duration like 60m; off: no autostop unless `cades-tui autostop NAME --idle ...`
    action: str = "stop"  # stop (powered off from inside) or shelve (an application credential of that VM)
    cpu_percent: float = 5.0  # CPU above this counts as busy
    warn_before: str = "5m"  # the warning (Jupyter's log, the app) comes this long before acting
    check_every: str = "60s"  # the watchdog looks this often


def _no_keys() -> Mapping[str, str]:
    return MappingProxyType({})


# The states a cost model prices (a factor of the full rate each); a state not listed costs the full rate.
COST_STATES = ("ACTIVE", "SHUTOFF", "SUSPENDED", "SHELVED", "SHELVED_OFFLOADED")


def _no_rates() -> Mapping[str, float]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CostModel:
    """What an instance costs on one cloud, per hour: vCPUs × the rate per vCPU-hour (`per_flavor`'s for a flavor
    whose name matches one of its names or fnmatch patterns, else `per_vcpu_hour`) × the factor of its state."""

    unit: str = "SU"  # named by the user: SU, $, core-hours, ...
    per_vcpu_hour: float = 1.0
    per_flavor: Mapping[str, float] = field(default_factory=_no_rates)  # flavor name or pattern -> per vCPU-hour
    state_factors: Mapping[str, float] = field(default_factory=_no_rates)  # state -> factor (missing: 1)


def _no_costs() -> Mapping[str, CostModel]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole profile. Frozen all the way down (the keymap is a read-only mapping)."""

    cloud: str = "sandbox"
    clouds_yaml: str = ""  # empty: openstacksdk's usual lookup (OS_CLIENT_CONFIG_FILE, ./, ~/.config/openstack, /etc)
    launch: LaunchDefaults = field(default_factory=LaunchDefaults)
    ssh: SSHSettings = field(default_factory=SSHSettings)
    setup: SetupSettings = field(default_factory=SetupSettings)
    jupyter: JupyterSettings = field(default_factory=JupyterSettings)
    idle: IdleSettings = field(default_factory=IdleSettings)
    ui: UISettings = field(default_factory=UISettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    autostop: AutostopSettings = field(default_factory=AutostopSettings)
    keymap: Mapping[str, str] = field(default_factory=_no_keys)  # action id -> keys, e.g. {"launch": "ctrl+n"}
    cost: Mapping[str, CostModel] = field(default_factory=_no_costs)  # clouds.yaml entry -> its cost model
    source: str = "built-in defaults"  # where these settings came from (for messages)

    def __post_init__(self) -> None:
        if not isinstance(self.keymap, MappingProxyType):
            object.__setattr__(self, "keymap", MappingProxyType(dict(self.keymap)))

    @property
    def cost_model(self) -> CostModel | None:
        """The cost model of the cloud in use (None: the profile prices none)."""
        return self.cost.get(self.cloud)

    def with_cloud(self, cloud: str, clouds_yaml: str = "") -> Settings:
        return dataclasses.replace(self, cloud=cloud, clouds_yaml=clouds_yaml or self.clouds_yaml)


DEFAULTS = Settings()  # what a missing key means; the views in guide/ and jupyter/ take their defaults from here

# -- checks beyond the type -----------------------------------------------------------------------------------

_SESSION_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_USER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9._-]{0,31}")  # POSIX portable user names (no leading digit or '-')
_PATH_RE = re.compile(r"(~(/[A-Za-z0-9._/-]*)?|[A-Za-z0-9._/-]+)")  # `~` only in front; no shell metacharacters
_KEY_RE = re.compile(r"((ctrl|shift|alt|meta|super|hyper)\+)*([A-Za-z0-9_]+|[^\s,+])")
_ACTION_RE = re.compile(r"[A-Za-z0-9_.-]+")
_JUMP_RE = re.compile(r"([A-Za-z0-9._-]+@)?([A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:]+\])(:[0-9]{1,5})?")
_HOME = ("~", "~/", "/", ".", "./", "..", "~/..")


def _is_path(value: str) -> bool:
    return bool(_PATH_RE.fullmatch(value))


def _is_keys(value: str) -> bool:
    return all(_KEY_RE.fullmatch(k.strip()) for k in value.split(","))


def _port(lo: int) -> tuple[Callable[[Any], bool], str]:
    if lo == 0:
        return (lambda v: 0 <= v <= 65535, "an integer port 1-65535, or 0 for any free port")
    return (lambda v: 1 <= v <= 65535, "an integer port 1-65535")


def _positive(unit: str) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v > 0, f"a positive number of {unit}, e.g. 24")


_PATH_FIX = "a folder like ~/workspace: letters, digits, '.', '_', '-', '/', and '~' only in front (no $, spaces, ;)"

# key path -> (predicate on the decoded value, what is expected: the fix)
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "cloud": (lambda v: bool(v.strip()), "the name of a clouds.yaml entry"),
    "launch.volume_size_gb": (lambda v: MIN_VOLUME_GB <= v <= 16384,
                              f"an integer number of GB, {MIN_VOLUME_GB}-16384 (the guide's boot volume: Ubuntu, "
                              "Python and Jupyter need room to work)"),
    "ssh.user": (lambda v: bool(_USER_RE.fullmatch(v)), "a POSIX user name like ubuntu or cades "
                 "(letters, digits, '.', '_', '-'; not starting with a digit or '-'; at most 32)"),
    "ssh.jump_host": (lambda v: v == "" or bool(_JUMP_RE.fullmatch(v)),
                      "empty, or a jump host like me@login.example.org or login:2222 (no spaces or options)"),
    "ssh.keepalive_s": (lambda v: 0 <= v <= 3600, "seconds between keepalives, 0-3600 (0: none)"),
    "setup.install_method": (lambda v: v in INSTALL_METHODS, "one of " + ", ".join(INSTALL_METHODS)),
    "setup.env_path": (lambda v: v == "" or (_is_path(v) and v not in _HOME),
                       "empty (the method's default) or " + _PATH_FIX.replace("~/workspace", "~/jupyter-env")
                       + ", not HOME or /"),
    "setup.installer_url": (lambda v: v == "" or bool(re.fullmatch(r"https?://[^\s'\"`$;|&<>]+", v)),
                            "empty (the official installer), or an http(s):// URL with no spaces or shell characters"),
    "jupyter.app": (lambda v: v in JUPYTER_APPS, "one of " + ", ".join(JUPYTER_APPS)),
    "jupyter.port": _port(1),
    "jupyter.local_port": _port(0),
    "jupyter.workspace": (_is_path, _PATH_FIX),
    "jupyter.session_name": (lambda v: bool(_SESSION_RE.fullmatch(v)),
                             "a session name of 1-64 letters, digits, '.', '_', '-' (no spaces), e.g. jupyter"),
    "idle.resize_after_hours": _positive("hours"),
    "idle.stop_after_hours": _positive("hours"),
    "idle.delete_after_days": _positive("days"),
    "ui.refresh_s": (lambda v: 0.5 <= v <= 3600, "seconds between refreshes, 0.5-3600"),
    "ui.theme": (lambda v: v in THEMES, "one of Textual's themes: " + ", ".join(THEMES)),
    "cluster.workers": (lambda v: 0 <= v <= 1000, "a number of worker instances, 0-1000"),
    "cluster.threads_per_worker": (lambda v: 0 <= v <= 1024, "threads per worker, 1-1024, or 0 for one per vCPU"),
    "cluster.memory_fraction": (lambda v: 0 < v <= 1, "a fraction of the worker's memory, above 0 and at most 1"),
    "cluster.scheduler_port": _port(1),
    "cluster.dashboard_port": _port(1),
    "cluster.idle_scale_down_hours": _positive("hours"),
    "cluster.idle_delete_hours": _positive("hours"),
    "cost.*.unit": (lambda v: bool(re.fullmatch(r"[^\s]{1,12}", v)),
                    "a unit of 1-12 characters without spaces, like SU, $ or core-hours"),
    "cost.*.per_vcpu_hour": (lambda v: 0 <= v < 1e6, "a rate per vCPU-hour, 0 or more, e.g. 1.0"),
    "autostop.idle": (lambda v: v.strip().lower() == "off" or _duration_at_least(v, "MIN_IDLE_S"),
                      "off, or a duration of at least 5m like 60m, 2h or 1d"),
    "autostop.action": (lambda v: v in ("stop", "shelve"), "one of stop, shelve"),
    "autostop.cpu_percent": (lambda v: 0 < v <= 100, "a percentage above 0, at most 100, e.g. 5"),
    "autostop.warn_before": (lambda v: _duration_at_least(v, ""), "a duration like 5m or 90s"),
    "autostop.check_every": (lambda v: _duration_at_least(v, "MIN_EVERY_S"), "a duration of at least 10s, e.g. 60s"),
}


def _duration_at_least(text: str, minimum: str) -> bool:
    from tui.core.autostop import policy

    seconds = policy.parse_duration(text)
    return seconds is not None and seconds >= (float(getattr(policy, minimum)) if minimum else 0.0)

_PACKAGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?([<>=!~]=?[A-Za-z0-9.*+!,<>=~-]+)?")

# list key path -> (predicate on each item, what an item must be)
_ITEM_CHECKS: dict[str, tuple[Callable[[str], bool], str]] = {
    "setup.extra_packages": (lambda v: bool(_PACKAGE_RE.fullmatch(v)),
                             "a package name with an optional version, like xarray or numpy>=2 or dask[complete] "
                             "(no options like -e, no paths, URLs or spaces)"),
}

# section -> (the field the error points at, predicate on the section, what is expected)
_SECTION_CHECKS: dict[str, list[tuple[str, Callable[[Any], bool], str]]] = {
    "cluster": [
        ("dashboard_port", lambda c: c.dashboard_port != c.scheduler_port,
         "a port other than cluster.scheduler_port"),
        ("idle_delete_hours", lambda c: c.idle_delete_hours >= c.idle_scale_down_hours,
         "at least cluster.idle_scale_down_hours (workers are removed before the cluster is deleted)"),
        ("workers", lambda c: c.workers > 0 or c.head_worker,
         "at least 1 when cluster.head_worker is false (else no worker runs)"),
    ],
}


# -- lookup ---------------------------------------------------------------------------------------------------


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
    check_environment()
    path = find_config(explicit)
    settings = DEFAULTS if path is None else load_file(path)
    override = cloud or os.environ.get("OS_CLOUD")
    if override:
        settings = dataclasses.replace(settings, cloud=override)
    return settings


def check_environment() -> None:
    """The app's own environment variables that take a word: a misspelt value is refused, not ignored."""
    for name in ("CADES_TUI_SANDBOX_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        folder = os.environ.get(name, "")
        existing = next((p for p in [Path(folder).expanduser(), *Path(folder).expanduser().parents]
                         if p.exists() or p.is_symlink()), None) if folder else None
        if existing is not None and not existing.is_dir():
            raise ConfigError(f"${name}={folder!r}: {existing} is not a folder — point it at a folder (it is "
                              "created when missing), or unset it")
    value = os.environ.get("CADES_TUI_FORWARDER", "")
    if not value.strip():
        return
    from tui.core.platform import FORWARDER_ENV, FORWARDERS  # only then: its import costs the first frame ~40 ms

    if value.strip().lower() not in FORWARDERS:
        raise ConfigError(f"${FORWARDER_ENV}={value!r}: expected one of {', '.join(FORWARDERS)} — or unset it "
                          "(auto: OpenSSH's data path on Linux)")


def load_file(path: Path) -> Settings:
    """The settings in `path`; ConfigError (one line: file:line, key, value, fix) on any problem."""
    import yaml  # only when there is a file to read: the app's first frame does not wait for it

    name = str(path)
    node = _compose(path, name)
    if node is None:
        return dataclasses.replace(DEFAULTS, source=name)
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{name}:{_line(node)}: expected a mapping of settings at the top level")
    settings: Settings = _section(Settings, node, name, prefix="")
    return dataclasses.replace(settings, source=name)


def _compose(path: Path, name: str) -> yaml.Node | None:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{name}: file not found — create it from config/cades-tui.example.yaml or drop --config"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read ({exc})") from None
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        line, problem = yaml_problem(exc)
        raise ConfigError(f"{name}:{line}: malformed YAML: {problem}" if line else
                          f"{name}: malformed YAML: {problem}") from None


# PyYAML's context -> (what is wrong on the context's line, the fix); its problem mark is where the scanner gave
# up, often the line after the mistake (a key without ':' on line 30 is reported at 31).
_YAML_CONTEXTS = {
    "while scanning a simple key": "a key without ':' — write 'key: value'",
    "while scanning a quoted scalar": "a quote opened on this line is never closed — close it",
    "while parsing a flow sequence": "a '[' list opened on this line is not closed — end it with ']'",
    "while parsing a flow mapping": "a '{' mapping opened on this line is not closed — end it with '}'",
}
# PyYAML's problem (start) -> what it means, in the user's words
_YAML_PROBLEMS = {
    "expected <block end>, but found": "this line is indented unlike the lines around it — align it with its "
                                       "neighbours (spaces only)",
    "found character '\\t' that cannot start any token": "a tab — indent with spaces only",
}


def _misplaced_colon(mark: Any) -> tuple[int, str]:
    """PyYAML's "mapping values are not allowed here": a value with ': ' in it, or — when nothing on the line
    before the ':' is a key — the line above misses its ':' (its text ran on into this line)."""
    lines = str(getattr(mark, "buffer", "") or "").replace("\0", "").split("\n")
    here = lines[mark.line] if mark.line < len(lines) else ""
    if ": " in here[:mark.column] or here[:mark.column].rstrip().endswith(":"):
        return mark.line + 1, "a value with ': ' in it — put the value in quotes"
    above = next((n for n in range(mark.line - 1, -1, -1)
                  if lines[n].strip() and not lines[n].lstrip().startswith("#")), None)
    if above is not None and not re.match(r"\s*(- )?[^\s#][^#]*?:(\s|$)", lines[above]):
        return above + 1, "a key without ':' — write 'key: value'"
    return mark.line + 1, ("a ':' where no key can start — check this line's indentation, or quote a value that "
                           "has ': ' in it")


def yaml_problem(exc: Exception) -> tuple[int | None, str]:
    """(1-based line of the mistake or None, one line saying what is wrong and how to fix it) of a PyYAML error."""
    context = getattr(exc, "context", None) or ""
    context_mark = getattr(exc, "context_mark", None)
    problem_mark = getattr(exc, "problem_mark", None)
    problem = str(getattr(exc, "problem", None) or str(exc).splitlines()[0])
    problem = re.sub(r"<([a-z ]+)>", r"\1", problem)  # '<block end>': no angle brackets (read as markup elsewhere)
    if problem.startswith("but ") and context:
        problem = f"{context}, {problem}"
    said = _YAML_CONTEXTS.get(context)
    if said and context_mark is not None:
        return context_mark.line + 1, f"{said} (PyYAML: {problem})"
    mark = problem_mark or context_mark
    line = mark.line + 1 if mark is not None else None
    if problem.startswith("mapping values are not allowed") and mark is not None:
        return _misplaced_colon(mark)
    for start, meaning in _YAML_PROBLEMS.items():
        if problem.startswith(re.sub(r"<([a-z ]+)>", r"\1", start)):
            return line, meaning
    return line, f"{problem} — check the indentation and quoting"


# -- the typed walk over the YAML nodes -----------------------------------------------------------------------


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _fail(file: str, node: yaml.Node, path: str, expected: str) -> ConfigError:
    return ConfigError(f"{file}:{_line(node)}: {path}: expected {expected}, got {_show(node)}")


def _section(cls: type, node: yaml.MappingNode, file: str, prefix: str) -> Any:
    """A mapping node -> an instance of the settings dataclass `cls`; every key known, typed and checked."""
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls) if f.name != "source"]
    values: dict[str, Any] = {}
    lines: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        path = f"{prefix}{key}"
        if key not in known:
            raise ConfigError(f"{file}:{_line(key_node)}: unknown key '{path}' — expected one of: "
                              + ", ".join(sorted(known)))
        if key in values:
            raise ConfigError(f"{file}:{_line(key_node)}: {path}: given twice — keep one")
        values[key] = _decode(hints[key], value_node, file, path)
        check = _CHECKS.get(path) or _CHECKS.get(re.sub(r"^cost\.[^.]+\.", "cost.*.", path))
        if check and not check[0](values[key]):
            raise _fail(file, value_node, path, check[1])
        lines[key] = value_node
    result = cls(**values)
    section = prefix.rstrip(".")
    for name, ok, expected in _SECTION_CHECKS.get(section, ()):
        if not ok(result):
            raise _fail(file, lines.get(name, node), f"{section}.{name}", expected)
    return result


def _decode(hint: Any, node: yaml.Node, file: str, path: str) -> Any:
    import yaml

    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        if hint is str and node.value == "~":
            raise ConfigError(f"{file}:{_line(node)}: {path}: a bare ~ is YAML's 'nothing' — write '~' (quoted) "
                              "for the home folder, or leave the key out for its default")
        empty = _empty(hint)
        if empty is not None:
            return empty
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(node, yaml.MappingNode):
            raise _fail(file, node, path, "a mapping of settings")
        return _section(hint, node, file, path + ".")
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(node, yaml.SequenceNode):
            raise _fail(file, node, path, "a list like [numpy, pandas]")
        items = tuple(_text(item, file, path, "text items") for item in node.value)
        if check := _ITEM_CHECKS.get(path):
            for item_node, item in zip(node.value, items, strict=True):
                if not check[0](item):
                    raise _fail(file, item_node, f"{path} item", check[1])
        return items
    if origin is Mapping and typing.get_args(hint)[1] is not str:
        return _mapping(typing.get_args(hint)[1], node, file, path)
    if origin is Mapping:
        if not isinstance(node, yaml.MappingNode):
            raise _fail(file, node, path, "a mapping like 'launch: ctrl+n'")
        return _keymap(node, file, path)
    accept, convert, expected = _SCALARS[hint]
    value = _scalar(node)
    if value is False and path == "autostop.idle":  # YAML 1.1 reads a bare `off` as false
        value = "off"
    if not accept(value):
        raise _fail(file, node, path, expected)
    return convert(value)


def _empty(hint: Any) -> Any:
    """What an empty value (`key:` with nothing after it) means: the section's defaults, no items, no text."""
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return hint()
    origin = typing.get_origin(hint)
    if origin is tuple:
        return ()
    if origin is Mapping:
        return MappingProxyType({})
    if hint is str:
        return ""
    return None  # none: a number or a boolean must be written (the scalar check says so)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# type -> (accepts the YAML value, converts it, what is expected)
_SCALARS: dict[Any, tuple[Callable[[Any], bool], Callable[[Any], Any], str]] = {
    bool: (lambda v: isinstance(v, bool), bool, "true or false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), int, "an integer"),
    float: (_is_number, float, "a number"),
    str: (lambda v: isinstance(v, str) or _is_number(v), str, "text"),
}


def _text(node: yaml.Node, file: str, path: str, expected: str) -> str:
    value = _scalar(node)
    if not isinstance(value, str) or not value.strip():
        raise _fail(file, node, path, expected)
    return value


_IDS_WHERE = "the README's Keys section lists them"


def _action(node: yaml.Node, file: str, path: str) -> str:
    value = _scalar(node)
    if not isinstance(value, str) or not _ACTION_RE.fullmatch(value):
        raise ConfigError(f"{file}:{_line(node)}: {path}: expected an action id like launch or pane.flavors "
                          f"({_IDS_WHERE}), got {_show(node)}")
    ids = {i for scope in keymap_defaults().values() for i in scope}
    if value not in ids:
        hint = _close_to(value, ids)
        raise ConfigError(f"{file}:{_line(node)}: {path}: unknown action id '{value}' — {hint}{_IDS_WHERE}")
    return value


def _keys(node: yaml.Node, file: str, path: str) -> str:
    """The keys, checked against Textual's key grammar; single characters spelled as Textual names them."""
    expected = "keys as text like 'ctrl+n' or 'n,f2' (modifiers ctrl, shift, alt, meta, super, hyper)"
    value = _text(node, file, path, expected)
    if not _is_keys(value):
        raise _fail(file, node, path, expected)
    keys = []
    for key in (k.strip() for k in value.split(",")):
        *modifiers, base = key.split("+")
        if len(base) > 1 and base not in KEY_NAMES:
            hint = _close_to(base, KEY_NAMES)
            raise ConfigError(f"{file}:{_line(node)}: {path}: '{key}' is not a key: '{base}' is neither one "
                              f"character nor a key name — {hint}use e.g. ctrl+n, f2, enter, space, question_mark")
        if len(set(modifiers)) < len(modifiers):
            raise _fail(file, node, path, "each modifier at most once, like ctrl+shift+n")
        keys.append(key_name(key) if len(key) == 1 else key)  # as Textual normalizes a keymap
    return ",".join(keys)


def _keymap(node: yaml.MappingNode, file: str, path: str) -> Mapping[str, str]:
    """action id -> keys; refused when two actions of one screen would share a key (`launch: q` takes Quit's
    key away: then nothing quits)."""
    keymap: dict[str, str] = {}
    lines: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        action = _action(key_node, file, path)
        if action in keymap:
            raise ConfigError(f"{file}:{_line(key_node)}: {path}.{action}: given twice — keep one")
        keymap[action] = _keys(value_node, file, f"{path}.{action}")
        lines[action] = value_node
    for scope, defaults in keymap_defaults().items():
        owner: dict[str, str] = {}
        for action in sorted(defaults, key=lambda a: (a in keymap, _line(lines[a]) if a in lines else 0)):
            for key in keymap.get(action, defaults[action]).split(","):
                other = owner.setdefault(key, action)
                if other != action:
                    fix = (f"pick another key, or move {other} too (keymap: {other}: ...)" if other not in keymap
                           else "give each its own key")
                    raise ConfigError(f"{file}:{_line(lines[action])}: {path}.{action}: '{key}' is already "
                                      f"{other}'s key on the {scope} — {fix}")
    return MappingProxyType(keymap)


# mapping path (the cloud's name as *) -> (predicate on a key, on a value; what is expected)
_MAPPING_CHECKS: dict[str, tuple[Callable[[str], bool], Callable[[Any], bool], str]] = {
    "cost": (lambda k: bool(k.strip()), lambda v: True, "a clouds.yaml entry's name"),
    "cost.*.per_flavor": (lambda k: bool(re.fullmatch(r"[^\s]{1,255}", k)), lambda v: 0 <= v < 1e6,
                          "a flavor name or pattern (like m3.large or 'g3.*') and its rate per vCPU-hour, 0 or more"),
    "cost.*.state_factors": (lambda k: k in COST_STATES, lambda v: 0 <= v <= 10,
                             "one of " + ", ".join(COST_STATES) + " and a factor of the full rate, 0-10 (e.g. "
                             "SHUTOFF: 0.5)"),
}


def _mapping(value_hint: Any, node: yaml.Node, file: str, path: str) -> Mapping[str, Any]:
    """name -> value (a number, or a settings section) for `cost` and the mappings inside its models."""
    import yaml

    check = _MAPPING_CHECKS.get(re.sub(r"^cost\.[^.]+\.", "cost.*.", path))
    expected = check[2] if check else "names and values"
    if not isinstance(node, yaml.MappingNode):
        raise _fail(file, node, path, f"a mapping of {expected}")
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = str(_scalar(key_node))
        if check and not check[0](key):
            near = "Nova calls a stopped server SHUTOFF; " if key.upper() == "STOPPED" else _close_to(key, COST_STATES)
            raise ConfigError(f"{file}:{_line(key_node)}: {path}: unknown name {key!r} — {near}expected {expected}")
        if key in out:
            raise ConfigError(f"{file}:{_line(key_node)}: {path}.{key}: given twice — keep one")
        out[key] = _decode(value_hint, value_node, file, f"{path}.{key}")
        if check and not check[1](out[key]):
            raise _fail(file, value_node, f"{path}.{key}", expected)
    return MappingProxyType(out)


def _scalar(node: yaml.Node) -> Any:
    """The Python value of a scalar node with YAML's safe typing (int, float, bool, null, str)."""
    import yaml

    if not isinstance(node, yaml.ScalarNode):
        return None
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _show(node: yaml.Node) -> str:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return repr(node.value)
