"""The core checks the profile's keymap and theme without importing textual: its lists (tui.conventions.KEYMAP_DEFAULTS,
tui.core.config.THEMES, KEY_NAMES, key_name) must equal what the installed textual and the app's bindings have, or a
valid profile is refused (or a bad one accepted) the day either changes."""

from __future__ import annotations

import importlib
import pkgutil
import string
from collections.abc import Iterator

from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode
from textual.keys import Keys, _character_to_key, _normalize_key_list

import tui.ui
from tui.conventions import KEYMAP_DEFAULTS
from tui.core.config import KEY_NAMES, THEMES, key_name

# which screen (a KEYMAP_DEFAULTS scope) each class's bindings act on
SCOPES = {
    "CadesApp": "main screen", "InstancesTable": "main screen", "TunnelsTable": "main screen",
    "ClusterScreen": "cluster screen", "VolumesScreen": "volumes screen", "JupyterLogScreen": "Jupyter log",
    "LaunchWizard": "launch wizard", "HelpScreen": "help", "ConsoleScreen": "console log",
    "DetailsScreen": "instance details", "Confirm": "confirm dialog", "DeleteInstance": "delete dialog",
    "TypedConfirm": "typed confirm dialog", "HostKeyScreen": "host key dialog", "PickFlavor": "resize dialog",
    "VerifyResize": "resize check dialog", "NewVolume": "new volume dialog", "WorkerCount": "worker count dialog",
    "SecretPrompt": "sign-in dialog", "ImageName": "image name dialog", "ForwardDialog": "forward dialog",
    "AutostopDialog": "autostop dialog", "TransfersScreen": "transfers screen",
}


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def app_bindings() -> dict[str, dict[str, str]]:
    """scope -> {binding id: keys} of every binding with an id in every class of tui.ui."""
    for module in pkgutil.walk_packages(tui.ui.__path__, "tui.ui."):
        importlib.import_module(module.name)
    found: dict[str, dict[str, str]] = {}
    for cls in set(_subclasses(DOMNode)):
        if not cls.__module__.startswith("tui."):
            continue
        for binding in cls.__dict__.get("BINDINGS", []):
            if isinstance(binding, Binding) and binding.id:
                scope = SCOPES.get(cls.__name__, f"unlisted class {cls.__name__}")
                found.setdefault(scope, {})[binding.id] = _normalize_key_list(binding.key)
    return found


def test_keymap_ids_are_the_apps_binding_ids_with_their_keys() -> None:
    expected = {scope: {i: _normalize_key_list(k) for i, k in ids.items()} for scope, ids in KEYMAP_DEFAULTS.items()}
    assert app_bindings() == expected


def test_themes_are_textuals() -> None:
    assert set(THEMES) == set(App().available_themes)


def test_key_names_are_textuals() -> None:
    named = {k.value.rpartition("+")[2] for k in Keys} | {_character_to_key(c) for c in string.printable}
    assert {n for n in named if len(n) > 1 and not n.startswith("<")} == KEY_NAMES
    for character in string.printable + "é€":
        assert key_name(character) == _character_to_key(character)
