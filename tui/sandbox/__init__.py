"""The sandbox cloud: a local OpenStack-compatible API (Keystone v3, Nova, Glance, Neutron, Cinder) on
127.0.0.1 whose ACTIVE servers are real SSH hosts.

    sb = Sandbox(tmp, delays=Delays.fast()); sb.start(); ...; sb.stop()

URLs (one port): /identity (auth_url), /compute/v2.1, /image, /network, /volume/v3/<project>.
`sb.clouds_yaml` names the clouds "sandbox" (password) and "sandbox-appcred" (application credential).

Convention: the address of every server is the floating IP 127.0.0.1 (plus a fixed 10.0.x.y on "sandbox-net");
its SSH port and user are in the server metadata under `tui.conventions.META_SSH_PORT` / `META_SSH_USER`.
"""

from tui.sandbox.cli import serve
from tui.sandbox.knobs import Delays, Faults
from tui.sandbox.sandbox import Sandbox
from tui.sandbox.sshhost import SSHHost, SSHHostError

__all__ = ["Delays", "Faults", "SSHHost", "SSHHostError", "Sandbox", "serve"]
