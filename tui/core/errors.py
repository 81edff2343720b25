"""The one error family: every error the core raises for a caller is a `CadesError`, and its kind says what the
caller does about it. Pure (imports nothing): every room may import it.

    CadesError           str() is one line for the user (and its fix); the root
      BadInput           the user's input is wrong: nothing was tried (the CLI exits 2)
      Missing            no such instance, flavor, volume, key pair… (a name to check)
      Refused            the cloud or the host said no: credentials, quota, wrong state, host key (retrying the
                         same thing will not help)
      RetryLater         transient: try again later (rate limited, timed out, a dropped connection)
        Unreachable      nothing answered: the cloud's API or the instance's SSH (a booting VM: wait and retry)
      Declined           the user said no to a confirmation: nothing changed (said as such, not a failure)
      ManagerError       an operation on an instance failed (the message says where); `Cancelled` is its Declined

Where an error comes from stays in its class (`CloudError`, `RemoteError`, `ClusterError`, …, each under the root
with a kind mixed in): decide on the kind, never on `__cause__`.
"""

from __future__ import annotations


class CadesError(Exception):
    """Anything the core tells a caller went wrong; `str()` is one line meant for the user."""


class BadInput(CadesError):
    """The user's input (an argument, a profile field, a file) is wrong; nothing was tried."""


class Missing(CadesError):
    """What was named does not exist."""


class Refused(CadesError):
    """Refused by the cloud or the host; the same request will be refused again."""


class RetryLater(CadesError):
    """A transient failure: the same request may work later."""


class Unreachable(RetryLater):
    """Nothing answered (the cloud's API, or SSH on the instance)."""


class Declined(CadesError):
    """The user declined a confirmation: nothing changed."""


class ManagerError(CadesError):
    """A remote operation on an instance failed; `str()` is a message for the user (already emitted as an event
    where one fits)."""


class Cancelled(ManagerError, Declined):
    """The user declined a confirmation the operation asked for: nothing changed (said as such, not a failure)."""


class NoConnection(ManagerError, Unreachable):
    """No SSH connection to the instance (refused, timed out, dropped): retried by who waits for a booting VM."""
