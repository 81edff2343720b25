"""openstacksdk's and keystoneauth's exceptions as the CloudError family (`tui.core.cloud.base`).

`translate_errors` wraps every call to the cloud, naming what we were doing; `classify` reads the HTTP status (or
the keystoneauth failure) under openstacksdk's wrapping, and the cloud's own message without its HTML.
Both libraries are imported only when an error is being classified.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from tui.core.cloud.base import (
    AuthError,
    CloudError,
    CloudUnreachable,
    Conflict,
    InvalidInput,
    NoCloudConfigured,
    NotFound,
    QuotaExceeded,
    RateLimited,
)


def _searched() -> list[str]:
    """Where openstacksdk looks for clouds.yaml here (its user directory follows XDG_CONFIG_HOME), home as ~."""
    import os

    from openstack.config.loader import CONFIG_SEARCH_PATH

    home = os.path.expanduser("~")
    return list(dict.fromkeys(("~" + p[len(home):] if p.startswith(home + os.sep) else p)
                              for p in (os.path.join(d, "clouds.yaml") for d in CONFIG_SEARCH_PATH)))


def no_such_cloud(cloud: str, loader: Any, exc: Exception, files: list[str] | None) -> InvalidInput:
    """Bad input, refused before asking any cloud (exit code 2): the clouds.yaml has no entry `cloud` — said with
    the file and the entries it has — or there is no clouds.yaml, or the entry itself is broken (openstacksdk's
    reason). (A file that is not valid YAML is named by `tui.core.cloud.clouds_yaml.open_cloud`.)"""
    where = getattr(loader, "config_filename", None)
    if not where:
        looked = ", ".join(files or _searched())
        return NoCloudConfigured(f"cloud '{cloud}': no clouds.yaml found (looked in {looked})",
                            "download it from Horizon (API Access) to one of those, set OS_CLIENT_CONFIG_FILE, "
                            "or try the sandbox cloud: cades-tui --demo")
    names = sorted(set(loader.get_cloud_names()))
    if cloud not in names:
        have = f"its entries: {', '.join(names)}" if names else "it has no entries"
        return InvalidInput(f"cloud '{cloud}' is not in {where} ({have})",
                            "name one with --cloud NAME or `cloud:` in the profile")
    return InvalidInput(f"cloud '{cloud}' in {where}: {exc}", "fix that entry of clouds.yaml")


def http_error(response: Any) -> BaseException:
    """The openstacksdk exception an HTTP error response stands for."""
    from openstack import exceptions

    try:
        exceptions.raise_from_response(response)
    except exceptions.HttpException as exc:
        return exc
    return exceptions.HttpException(response=response)


def _status(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
    return int(code) if isinstance(code, int) else None


@contextlib.contextmanager
def translate_errors(doing: str) -> Iterator[None]:
    """Turn openstacksdk/keystoneauth exceptions into the CloudError family, naming what we were doing."""
    try:
        yield
    except CloudError:
        raise
    except Exception as exc:
        raise classify(exc, doing) from exc


def _root(exc: BaseException) -> BaseException:
    """openstacksdk wraps keystoneauth errors (e.g. a 401 in SDKException): look through the chain."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        if _status(seen) is not None or type(seen).__module__.startswith("keystoneauth1"):
            return seen
        seen = seen.__cause__ or seen.__context__
    return exc


def classify(exc: BaseException, doing: str) -> CloudError:
    from keystoneauth1 import exceptions as ka

    exc = _root(exc)
    name = type(exc).__name__
    if isinstance(exc, ka.Unauthorized) or _status(exc) == 401:
        return AuthError(f"{doing}: the cloud refused the credentials (401)",
                         "check the clouds.yaml entry; application credentials may have expired")
    if isinstance(exc, ka.connection.ConnectTimeout | ka.connection.UnknownConnectionError) or "timed out" in str(exc):
        return CloudUnreachable(f"{doing}: the cloud API did not answer in time ({name})",
                           "retry in a moment; for a slow cloud set api_timeout in clouds.yaml")
    if isinstance(exc, ka.connection.ConnectFailure | ka.connection.SSLError):
        return CloudUnreachable(f"{doing}: cannot reach the cloud API ({name})",
                           "check the network/VPN and auth_url in clouds.yaml")
    if isinstance(exc, ka.DiscoveryFailure | ka.EndpointNotFound):
        return CloudUnreachable(f"{doing}: {exc}", "check auth_url and the region in clouds.yaml")
    status = _status(exc)
    message = _cloud_message(exc)
    if (status == 403 and "quota" in message.lower()) or status == 413:
        return QuotaExceeded(f"{doing}: {quota_message(message)}",
                             "free resources (stop/delete/resize down) or ask your cloud for more quota", status)
    if status == 404 or name in ("ResourceNotFound", "NotFoundException"):
        return NotFound(f"{doing}: {message}", "", status)
    if status == 409:
        return Conflict(f"{doing}: {message}", "wait until the instance settles and try again", status)
    if status == 429:
        return RateLimited(f"{doing}: the cloud is rate-limiting requests (429)", "wait a moment and retry", status)
    if status and status >= 500:
        return CloudError(f"{doing}: the cloud had an internal error ({status}): {message}",
                          "retry in a moment; if it persists, contact the cloud's support", status)
    if isinstance(exc, ka.ClientException):
        return CloudUnreachable(f"{doing}: {name}: {exc}", "check the network and clouds.yaml")
    return CloudError(f"{doing}: {message}", "", status)


_NOVA_QUOTA = re.compile(r"Quota exceeded for ([\w, ]+): Requested ([\d, ]+), but already used ([\d, ]+) "
                         r"of ([\d, -]+)")


def quota_message(message: str) -> str:
    """Nova's quota refusal ("Quota exceeded for cores, ram: Requested 15, 12288, but already used 2, 6144 of 16,
    8192 cores, ram"; RAM in MiB) in the app's own units and words; other messages unchanged."""
    from tui.core.units import left, ram

    found = _NOVA_QUOTA.search(message)
    if found is None:
        return message
    columns = [[w.strip() for w in g.split(",")] for g in found.groups()]
    if len({len(c) for c in columns}) != 1:
        return message
    parts = []
    for what, requested, used, limit in zip(*columns, strict=True):
        n = [int(v) for v in (requested, used, limit)]
        show = ram if what == "ram" else str
        free = max(0, n[2] - n[1])
        parts.append(f"{'RAM' if what == 'ram' else what}: this needs {show(n[0])} more, {show(n[1])} of "
                     f"{show(n[2])} in use ({left(free, show(free))})")
    return "over the quota — " + "; ".join(parts)


def _cloud_message(exc: BaseException) -> str:
    """The cloud's own message, without openstacksdk's wrapping where we can."""
    details = getattr(exc, "details", None)
    if isinstance(details, str) and details.strip():
        return _no_html(details)
    text = _no_html(str(exc))
    return text.splitlines()[0] if text else type(exc).__name__


def _no_html(text: str) -> str:
    """Cloud messages carry HTML at times (`The resource could not be found.<br /><br />`): plain text only."""
    if "<" not in text:
        return text.strip()
    import html

    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())
