"""What the setup pipeline installs and where: `SetupSpec`, a view of the profile (`tui.core.config`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from tui.core.config import DEFAULTS, ENV_PATHS

if TYPE_CHECKING:
    from tui.core.config import Settings


class InstallMethod(StrEnum):
    UV = "uv"
    MINIFORGE = "miniforge"
    ANACONDA = "anaconda"


BASE_PACKAGES = ("jupyterlab", "notebook", "ipywidgets", "nbconvert")
DEFAULT_ENV_PATHS = {InstallMethod(method): path for method, path in ENV_PATHS.items()}  # the profile's table
# `{os}` and `{arch}` are filled from the detected `uname -s` / `uname -m`.
DEFAULT_INSTALLER_URLS = {
    InstallMethod.MINIFORGE: "https://github.com/conda-forge/miniforge/releases/latest/download/Miniforge3-{os}-{arch}.sh",
    InstallMethod.ANACONDA: "https://repo.anaconda.com/archive/Anaconda3-2024.10-1-{os}-{arch}.sh",
}
_METHOD = InstallMethod(DEFAULTS.setup.install_method)
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MOUNT_RE = re.compile(r"^/[A-Za-z0-9._/-]*$")


@dataclass(frozen=True, slots=True)
class VolumeSpec:
    """A cloud volume attached to the instance; `device` is the attachment's device name hint."""

    volume_id: str
    device: str = ""
    mount_point: str = "/data"

    def __post_init__(self) -> None:
        if not _MOUNT_RE.match(self.mount_point):
            raise ValueError(f"mount point {self.mount_point!r}: an absolute path of letters, digits, ._-/")
        if self.device and not _MOUNT_RE.match(self.device):
            raise ValueError(f"device {self.device!r} is not a device path")


@dataclass(frozen=True, slots=True)
class SetupSpec:
    """The setup's view of the profile: build it with `from_settings`.

    Built directly (tests, benchmarks), the profile's fields default to the profile's defaults (`DEFAULTS`), except
    `extra_packages`: none, so a bare `SetupSpec()` installs only `packages` (Jupyter itself).
    """

    method: InstallMethod = _METHOD
    env_path: str = DEFAULTS.setup.env_path  # "" = DEFAULT_ENV_PATHS[method]; "~/" is the remote HOME
    extra_packages: tuple[str, ...] = ()
    jupyter_port: int = DEFAULTS.jupyter.port
    workspace: str = DEFAULTS.jupyter.workspace
    installer_url: str = DEFAULTS.setup.installer_url  # conda methods; "" = DEFAULT_INSTALLER_URLS[method]
    packages: tuple[str, ...] = BASE_PACKAGES
    env: tuple[tuple[str, str], ...] = ()  # exported in every remote command, e.g. UV_CACHE_DIR
    volume: VolumeSpec | None = None
    autostop_config: str = ""  # the watchdog's config.json when the profile arms autostop at setup ("" = off)
    autostop_note: str = ""  # why setup does not arm it although the profile asks (shelve needs the cloud)
    ssh_wait_seconds: float = 300.0
    reconnect_seconds: float = 60.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", InstallMethod(self.method))
        for pkg in self.all_packages:
            if not pkg.strip() or pkg.lstrip().startswith("-"):
                raise ValueError(f"invalid package {pkg!r}: a requirement, not an option")
        for name, _ in self.env:
            if not _ENV_NAME_RE.match(name):
                raise ValueError(f"invalid environment variable name {name!r}")
        if not 1 <= self.jupyter_port <= 65535:
            raise ValueError(f"jupyter_port {self.jupyter_port} is not a TCP port")
        for label, path in (("env_path", self.env_path), ("workspace", self.workspace)):
            if "\n" in path or "\0" in path:
                raise ValueError(f"{label} contains a newline or NUL")
        if self.env_path.rstrip("/") in ("~", "", ".", "..", "~/..") and self.env_path:
            raise ValueError(f"env_path {self.env_path!r} must be a directory of its own, not HOME or /")

    @classmethod
    def from_settings(
        cls, settings: Settings, *, env: tuple[tuple[str, str], ...] = (), volume: VolumeSpec | None = None
    ) -> SetupSpec:
        """The setup the profile asks for; `env` is exported in every remote command, `volume` is formatted and
        mounted (the only profile-free parts)."""
        return cls(
            method=InstallMethod(settings.setup.install_method),
            env_path=settings.setup.env_path,
            extra_packages=settings.setup.extra_packages,
            jupyter_port=settings.jupyter.port,
            workspace=settings.jupyter.workspace,
            installer_url=settings.setup.installer_url,
            env=env,
            volume=volume,
        )

    @property
    def prefix(self) -> str:
        """The environment's directory on the instance (may start with `~/`)."""
        return self.env_path or DEFAULT_ENV_PATHS[self.method]

    @property
    def all_packages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.packages, *self.extra_packages)))

    def installer(self, os_name: str, arch: str) -> str:
        url = self.installer_url or DEFAULT_INSTALLER_URLS.get(self.method, "")
        return url.replace("{os}", os_name).replace("{arch}", arch)
