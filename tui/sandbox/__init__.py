"""The sandbox cloud: a local OpenStack-compatible API (Keystone v3, Nova, Glance, Neutron, Cinder) on
127.0.0.1 whose ACTIVE servers are real SSH hosts.

    sb = Sandbox(tmp, delays=Delays.fast()); sb.start(); ...; sb.stop()

URLs (one port): /identity (auth_url), /compute/v2.1, /image, /network, /volume/v3/<project>.
`sb.clouds_yaml` names the clouds "sandbox" (password), "sandbox-appcred" (application credential), "sandbox-totp"
(TOTP passcode) and "sandbox-mfa" (password and passcode).

Addresses: every server has its own fixed IP 127.0.0.N (N >= 2, unique, kept across stop/start/resize, freed on
delete) on "sandbox-net", and its sshd listens there. A server with a floating IP (always 127.0.0.1; openstacksdk's
auto_ip, `openstack server add floating ip`, or the app's launch with `public_ip=True` add one) is also served on
127.0.0.1; one without is reachable only at its private address (through a jump host, on a real cloud). Its SSH
port (one port, every address) and user are in the server metadata under `tui.conventions.META_SSH_PORT` /
`META_SSH_USER`; `sb.sshd_log_path(server)` is its sshd log (LogLevel DEBUG1: forwarded connections' targets).
Security groups are records only: nothing on loopback is enforced (see secgroups.py).
"""

from tui.sandbox.cli import serve
from tui.sandbox.knobs import Delays, Faults
from tui.sandbox.sandbox import Sandbox
from tui.sandbox.sshhost import SSHHost, SSHHostError

__all__ = ["Delays", "Faults", "SSHHost", "SSHHostError", "Sandbox", "serve"]
