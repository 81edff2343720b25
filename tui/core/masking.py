"""Secrets out of what is written down: the command log on each instance and the app's log file alike.

Pure text work (no SSH, no cloud): the app's log formatter uses it from the first record on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "********"
_SECRET_WORD = r"(?:token|password|passwd|passphrase|secret|api[_-]?key|access[_-]?key|credential)"  # noqa: S105
_KV_RE = re.compile(
    rf"(?i)([A-Za-z0-9_.\-]*{_SECRET_WORD}[A-Za-z0-9_.\-]*[\"']?\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s&\"',;}}]+)"
)
_FLAG_RE = re.compile(rf"(?i)(--?[A-Za-z0-9-]*{_SECRET_WORD}[A-Za-z0-9-]*\s+)(\"[^\"]*\"|'[^']*'|[^\s]+)")
_URL_AUTH_RE = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)([^@\s/]+)(@)")


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """Hide secret values: `token=...`, `--password x`, `"token": "..."`, URL passwords, and `secrets`."""
    for value in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(value, MASK)
    text = _URL_AUTH_RE.sub(lambda m: m.group(1) + MASK + m.group(3), text)
    text = _FLAG_RE.sub(lambda m: m.group(1) + MASK, text)
    return _KV_RE.sub(lambda m: m.group(1) + _keep_quotes(m.group(2)), text)


def _keep_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[0] + MASK + value[0]
    return MASK
