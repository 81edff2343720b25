"""What the setup pipeline installs and where: the lead maps the profile YAML onto `SetupSettings`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class InstallMethod(StrEnum):
    UV = "uv"
    MINIFORGE = "miniforge"
    ANACONDA = "anaconda"


BASE_PACKAGES = ("jupyterlab", "notebook", "ipywidgets", "nbconvert")
DEFAULT_ENV_PATHS = {
    InstallMethod.UV: "~/jupyter-env",
    InstallMethod.MINIFORGE: "~/miniforge3",
    InstallMethod.ANACONDA: "~/anaconda3",
}
# `{os}` and `{arch}` are filled from the detected `uname -s` / `uname -m`.
DEFAULT_INSTALLER_URLS = {
    InstallMethod.MINIFORGE: "https://github.com/conda-forge/miniforge/releases/latest/download/Miniforge3-{os}-{arch}.sh",
    InstallMethod.ANACONDA: "https://repo.anaconda.com/archive/Anaconda3-2024.10-1-{os}-{arch}.sh",
}
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
class SetupSettings:
    method: InstallMethod = InstallMethod.UV
    env_path: str = ""  # "" = DEFAULT_ENV_PATHS[method]; "~/" is the remote HOME
    extra_packages: tuple[str, ...] = ()
    jupyter_port: int = 8889
    workspace: str = "~/workspace"
    installer_url: str = ""  # conda methods; "" = DEFAULT_INSTALLER_URLS[method]
    packages: tuple[str, ...] = BASE_PACKAGES
    env: tuple[tuple[str, str], ...] = ()  # exported in every remote command, e.g. UV_CACHE_DIR
    volume: VolumeSpec | None = None
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
