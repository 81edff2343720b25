"""The sandbox's HTTP API assembled: every service's routes on one router, behind one guard (authentication,
then the injected latency, rate limits and faults of `Sandbox.faults`)."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from tui.sandbox import compute, identity, image, network, userimages, volume
from tui.sandbox.router import HTTPError, Request, Router

if TYPE_CHECKING:
    from tui.sandbox.sandbox import Sandbox


def router(sb: Sandbox, rng: random.Random) -> Router:
    """Identity, compute, image, network and volume on one router; `rng` draws the injected faults."""
    out = Router(lambda req: guard(sb, rng, req))
    for service in (identity, compute, image, network, volume, userimages):
        service.register(out, sb)
    return out


def guard(sb: Sandbox, rng: random.Random, req: Request) -> None:
    """Before every request: the faults' latency, authentication, then maybe a 429 or a 500."""
    f = sb.faults
    if f.latency_s:
        time.sleep(f.latency_s)
    identity.authenticate(sb, req)
    if f.rate_limit_rate and rng.random() < f.rate_limit_rate:
        raise HTTPError(
            429,
            {"overLimit": {"code": 429, "message": "This request was rate-limited.", "retryAfter": "1"}},
            {"Retry-After": "1"},
        )
    if f.error_rate and rng.random() < f.error_rate:
        raise HTTPError(
            500,
            {
                "computeFault": {
                    "code": 500,
                    "message": "Unexpected API Error. Please report "
                    "this at http://bugs.launchpad.net/nova/ and attach the Nova API "
                    "log if possible.\n<class 'sandbox.InjectedFault'>",
                }
            },
        )
