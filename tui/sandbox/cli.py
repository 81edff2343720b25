"""`cades-tui sandbox [--port N] [--state-dir DIR]`: run the sandbox cloud in the foreground."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType


def serve(port: int, state_dir: Path, seed_demo: bool = True) -> int:
    """Serve until SIGINT/SIGTERM; returns the exit code: 128 + the signal (130 Ctrl+C, 143 SIGTERM), as every
    foreground command of cades-tui."""
    from tui.sandbox.sandbox import Sandbox
    from tui.sandbox.sshhost import SSHHostError

    sb = Sandbox(state_dir, port=port, seed_demo=seed_demo)
    try:
        sb.start()
    except (OSError, SSHHostError, RuntimeError) as e:
        print(f"cades-tui sandbox: cannot start: {e}")
        return 1
    done = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"Sandbox cloud listening on {sb.url} (state in {sb.state_dir})")
        print(f"clouds.yaml: {sb.clouds_yaml}  (clouds: sandbox, sandbox-appcred, sandbox-totp, sandbox-mfa)")
        if sb.demo_key_path.exists():
            print(f"Demo key pair 'sandbox-demo': private key {sb.demo_key_path}")
        print("Use it with:")
        print(f"  export OS_CLIENT_CONFIG_FILE={sb.clouds_yaml} OS_CLOUD=sandbox")
        print("  openstack server list")
        print("Press Ctrl+C to stop (servers are kept for the next run).", flush=True)
        while not done.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("Stopping the sandbox cloud...", flush=True)
        sb.stop()
    return 128 + received[0] if received else 0
