"""Signing in: a clouds.yaml entry of any auth type openstacksdk offers, connected, and the secrets it asks for.

openstacksdk builds keystoneauth's plugin from the entry's `auth_type`: `password` (the default),
`v3applicationcredential`, `token`/`v3token` (a keystone token traded for a new one), `admin_token` (a fixed token
sent to fixed endpoints), `none` (no keystone at all: `*_endpoint_override`s name the services), `v3oidcpassword`
and `v3oidcaccesstoken` (an identity provider's access token traded at keystone's federation endpoint), `v3totp`
and `v3multifactor` (password and TOTP passcode). All of them connect through `connect` alike.

Two secrets may be missing from clouds.yaml on purpose: the password (Horizon's downloaded clouds.yaml has none)
and the TOTP passcode (a new one every 30 s). keystoneauth's loader marks both as "prompt" options; openstacksdk's
`pw_func` is the hook. They are asked for when keystone needs them — not when a cached token still serves
(`tui.core.cloud.authcache`) — through an `Ask`: the CLI asks on its terminal, the app in a dialog (`ask_through`
an event). `$OS_PASSWORD` / `$OS_PASSCODE` answer first, as for python-openstackclient. A passcode serves one
sign-in: a later one (the token expired) asks again; a password is asked once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.core.cloud import authcache
from tui.core.cloud.base import AuthError, InvalidInput

if TYPE_CHECKING:
    from tui.core.events import Emit

PLACEHOLDER = "\x00cades-tui: asked when keystone needs it\x00"  # never sent: replaced before any sign-in
KINDS = {"Password: ": "password", "TOTP passcode: ": "passcode"}  # keystoneauth's prompts, per secret
ENV = {"password": "OS_PASSWORD", "passcode": "OS_PASSCODE"}
ASK_TIMEOUT_S = 600.0  # the app's dialog: an answer within 10 minutes, else the sign-in fails (and is retried)


@dataclass(frozen=True, slots=True)
class Wanted:
    """A secret signing in needs and clouds.yaml does not hold."""

    cloud: str
    kind: str  # "password" | "passcode"

    @property
    def prompt(self) -> str:
        if self.kind == "passcode":
            return f"TOTP passcode for cloud '{self.cloud}' (the 6 digits of your authenticator app): "
        return f"Password for cloud '{self.cloud}': "

    @property
    def env(self) -> str:
        return ENV[self.kind]


Ask = Callable[[Wanted], str | None]  # the answer; None: nobody to ask, or the user cancelled


class SecretMissing(InvalidInput):
    """A password or passcode was needed and none was given."""


def no_answer(wanted: Wanted, why: str) -> SecretMissing:
    if wanted.kind == "passcode":
        what, how = "a TOTP passcode", "set OS_PASSCODE to your authenticator's current code"
    else:
        what, how = "a password", "set OS_PASSWORD (or `password:` under `auth:` in clouds.yaml)"
    return SecretMissing(f"cloud '{wanted.cloud}' needs {what} to sign in, and {why}",
                         f"{how}, or run it on a terminal to be asked")


def never_ask(wanted: Wanted) -> str | None:
    return None


class Secrets:
    """Fills the prompt-options of a keystoneauth plugin when it signs in (wraps its `get_auth_ref`)."""

    def __init__(self, cloud: str, ask: Ask | None) -> None:
        self.cloud = cloud
        self.ask = ask or never_ask
        self.given: dict[str, str] = {}  # kind -> the last answer (a passcode equal to it is used up)
        self.env_used: set[str] = set()
        self.lock = threading.Lock()

    def placeholder(self, prompt: str | None = None) -> str:
        """openstacksdk's `pw_func`: a stand-in for now; the real value is asked for at sign-in."""
        return PLACEHOLDER

    def attach(self, plugin: Any) -> None:
        original = plugin.get_auth_ref

        def get_auth_ref(session: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.fill(plugin)
            return original(session, **kwargs)

        plugin.get_auth_ref = get_auth_ref

    def fill(self, plugin: Any) -> None:
        for holder, attr, kind in slots(plugin):
            value = getattr(holder, attr, None)
            if value == PLACEHOLDER or (kind == "passcode" and value is not None and value == self.given.get(kind)):
                setattr(holder, attr, self.answer(kind))

    def answer(self, kind: str) -> str:
        wanted = Wanted(self.cloud, kind)
        env = os.environ.get(wanted.env, "")
        if env and (kind == "password" or kind not in self.env_used):
            self.env_used.add(kind)
            value = env
        else:
            asked = self.ask(wanted)
            if asked is None:
                raise no_answer(wanted, "nothing asks for it here" if self.ask is never_ask else "none was given")
            value = asked
        value = value.strip() if kind == "passcode" else value
        self.given[kind] = value
        return value


def slots(plugin: Any) -> list[tuple[Any, str, str]]:
    """(object, attribute, kind) of every password and passcode a keystoneauth plugin signs in with: the generic
    `password` plugin's own, and those of the v3 methods (password, totp) of it or of the v3 plugin it made."""
    found = [(plugin, "_password", "password")] if hasattr(plugin, "_password") else []
    for holder in (plugin, getattr(plugin, "_plugin", None)):
        for method in getattr(holder, "auth_methods", None) or []:
            found += [(method, attr, kind) for attr, kind in (("password", "password"), ("passcode", "passcode"))
                      if hasattr(method, attr)]
    return found


def connect(cloud: str, clouds_yaml: str | None, api_timeout: float, ask: Ask | None = None) -> tuple[Any, str | None]:
    """An openstacksdk Connection to the clouds.yaml entry `cloud`, signed in (keystone asked only when the token
    cache cannot serve); and the token restored from the cache (None when keystone was asked). Raises openstacksdk's
    and keystoneauth's exceptions (the caller translates them), InvalidInput for a missing secret."""
    import openstack.config
    import openstack.connection

    from tui.core.cloud.openstack_errors import no_such_cloud

    secrets = Secrets(cloud, ask)
    files = [clouds_yaml] if clouds_yaml else None
    loader = openstack.config.OpenStackConfig(config_files=files, pw_func=secrets.placeholder)
    try:
        config = loader.get_one(cloud=cloud, **multifactor_methods(loader, cloud))
        if not config.config.get("api_timeout"):  # a stuck API call must end (clouds.yaml may set it)
            config.config["api_timeout"] = api_timeout
    except openstack.exceptions.ConfigException as exc:
        raise no_such_cloud(cloud, loader, exc, files) from None
    conn = openstack.connection.Connection(config=config, app_name="cades-tui")
    plugin = getattr(conn.session, "auth", None)
    if plugin is not None and hasattr(plugin, "get_auth_ref"):
        secrets.attach(plugin)
    restored = authcache.restore(conn, cloud, clouds_yaml)  # a token still good: no keystone round trip
    try:
        restored = authorize(conn, restored)  # fail now, with a clear message, rather than on the first poll
    except Exception as exc:
        said = refusal(cloud, exc, "passcode" in secrets.given)
        if said is exc:
            raise
        raise said from exc
    authcache.remember(conn, cloud, clouds_yaml, restored)
    return conn, restored


def authorize(conn: Any, restored: str | None) -> str | None:
    """`conn.authorize()`; with a token from the cache that fails there (it asks no one: only a damaged entry can),
    once more without it. Returns the cached token still in use, if any."""
    try:
        conn.authorize()
        return restored
    except Exception as exc:
        if restored is None:
            raise
        authcache.skipped("applying", exc)
    conn.session.auth.set_auth_state(None)
    conn.authorize()
    return None


def refusal(cloud: str, exc: Exception, passcode: bool) -> Exception:
    """What to raise when signing in failed: keystone's refusal said for the sign-in it was (a passcode is often
    just stale; a user with multi-factor rules needs `v3multifactor`), anything else as it came."""
    from keystoneauth1.exceptions import MissingAuthMethods

    from tui.core.cloud.openstack_errors import classify

    doing = f"connecting to cloud '{cloud}'"
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, MissingAuthMethods):
        seen = seen.__cause__ or seen.__context__
    if isinstance(seen, MissingAuthMethods):
        wanted = " and ".join("+".join(rule) for rule in seen.required_auth_methods)
        return AuthError(f"{doing}: the cloud wants more than this sign-in (401): {wanted}",
                         "use `auth_type: v3multifactor` with `auth_methods: [v3password, v3totp]` in clouds.yaml")
    if passcode and (isinstance(exc, AuthError) or isinstance(classify(exc, doing), AuthError)):
        return AuthError(f"{doing}: the cloud refused the credentials (401)",
                         "check the TOTP passcode (a new one every 30 s) and try again")
    return exc


def multifactor_methods(loader: Any, cloud: str) -> dict[str, Any]:
    """A `v3multifactor` entry's `auth_methods`, as openstacksdk needs them: a list, both beside `auth:` (where it
    reads them to know the methods' options) and inside it (where the plugin is built from). Written either place,
    as a list or as keystoneauth's comma-separated string, it works."""
    try:
        raw = loader.get_one(cloud=cloud, validate=False).config
    except Exception:  # an error here is raised again, with openstacksdk's words, by the real get_one
        return {}
    methods = (raw.get("auth") or {}).get("auth_methods") or raw.get("auth_methods")
    if raw.get("auth_type") != "v3multifactor" or not methods:
        return {}
    names = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else [str(m) for m in methods]
    return {"auth_methods": names, "auth": {"auth_methods": names}}


def ask_through(emit: Emit) -> Ask:
    """An `Ask` for the app: a `SecretWanted` event the UI answers with a dialog. It blocks the calling thread (the
    app's connect worker, never its event loop) until the answer, at most ASK_TIMEOUT_S."""
    from tui.core.events import SecretWanted

    def ask(wanted: Wanted) -> str | None:
        done = threading.Event()
        box: list[str | None] = []

        def answer(value: str | None) -> None:
            if not done.is_set():
                box.append(value)
                done.set()

        emit(SecretWanted(wanted.cloud, wanted.kind, wanted.prompt, answer))
        done.wait(ASK_TIMEOUT_S)
        return box[0] if box else None

    return ask


def profile_path(clouds_yaml: str | Path | None) -> str | None:
    return str(Path(clouds_yaml).expanduser()) if clouds_yaml else None
