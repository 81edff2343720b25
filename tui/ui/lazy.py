"""Modules loaded on first attribute use.

The app's first frame should not wait for modules it does not draw with (models, messages, cloud errors: ~30 ms of
dataclass creation). `lazy("tui.core.models")` returns a stand-in whose first attribute access imports the real module
(thread-safe: it goes through the import system's locks); type checkers see the real module through a
`TYPE_CHECKING` import.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    def __getattr__(self, attr: str) -> Any:
        value = getattr(importlib.import_module(self.__name__), attr)
        setattr(self, attr, value)  # later lookups are plain attribute reads
        return value


def lazy(name: str) -> Any:
    return LazyModule(name)
