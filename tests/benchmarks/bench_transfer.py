"""Benchmark: `cades-tui cp`/`sync` (the engine's transfer: pinned connection, resume, SHA-256 on both ends) against
OpenSSH's `scp` and `rsync -a` over `ssh`, on the same sandbox instance, in one run.

Run on its own (not collected by pytest):

    .venv/bin/python tests/benchmarks/bench_transfer.py [--size MB] [--files N] [--rounds 2]

Goals (issue 22), each against its baseline measured in the same run; exits 1 when one is missed:
- one large file (1 GB by default) up: ≥ 0.9x `scp`'s throughput;
- 10,000 files of 4 KB into an empty folder: ≥ 1.0x `rsync -a`'s speed;
- the same sync again, nothing changed: ≤ 1.0x `rsync -a`'s time;
- a large-file upload cut at 50 % (the task cancelled, as Ctrl+C does) and run again: the second run moves
  ≤ 55 % of the bytes, and the file's SHA-256 is right.
Large file: best of `--rounds` (2) each, who goes first alternating; small files: medians of 2, re-sync: of 6.
Every timing of ours is a fresh `CoreEngine.transfers.run` (the instance looked up, its host key pinned from the console
log, a new SSH login), as each command does; OpenSSH's logs in anew each time too, with the same key and known_hosts.
The sandbox cloud runs in its own process; its VM is an sshd on 127.0.0.1 whose disk is a folder here.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import Goals, separate_sandbox

GOAL_LARGE, GOAL_SMALL, GOAL_RESYNC, GOAL_RESUME = 0.9, 1.0, 1.0, 0.55


def make_large(path: Path, size: int) -> None:
    block = os.urandom(1 << 20)
    with path.open("wb") as f:
        for i in range(size >> 20):
            f.write(block[i % 251:] + block[:i % 251])  # not all blocks alike


def make_small(root: Path, n: int) -> None:
    for i in range(n):
        d = root / f"d{i // 500:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.dat").write_bytes(os.urandom(4096))


def sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


class World:
    """The engine's side (settings, cloud, the instance) and OpenSSH's command lines for the same host."""

    def __init__(self, settings: Any, cloud: Any, services: Any, inst: Any, home: Path) -> None:
        self.settings, self.cloud, self.services, self.inst, self.home = settings, cloud, services, inst, home
        self.ssh: list[str] = []
        self.scp: list[str] = []

    async def transfer(self, kind: str, src: str, dst: str, cut_at: float = 0.0, **kw: Any) -> tuple[float, Any]:
        from tui.core.engine import CoreEngine
        from tui.core.transfer.models import TransferRequest, parse_endpoint

        engine = CoreEngine(self.settings, self.cloud, lambda _e: None, services=self.services)
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        cut: list[bool] = []

        def progress(p: Any) -> None:
            if cut_at and not cut and p.done >= cut_at * p.total:
                cut.append(True)
                loop.call_soon_threadsafe(task.cancel)

        t0 = time.monotonic()
        try:
            summary = await engine.transfers.run(TransferRequest(kind, parse_endpoint(src), parse_endpoint(dst), **kw),
                                            progress)  # type: ignore[arg-type]
        except asyncio.CancelledError:
            if not cut:
                raise
            task.uncancel()
            summary = None
        finally:
            await engine.aclose()
        return time.monotonic() - t0, summary

    async def openssh_args(self) -> None:
        from tui.core.engine import CoreEngine
        from tui.core.remote.connection import openssh_argv

        engine = CoreEngine(self.settings, self.cloud, lambda _e: None, services=self.services)
        ctx = await engine.context(self.inst)
        await engine.manager.connection(ctx)  # the pinned host key is in the app's known_hosts from here on
        await engine.aclose()
        argv = openssh_argv(ctx.target, tty=False)
        self.ssh = argv[:-2]  # without `-- host`
        t = ctx.target
        self.scp = ["scp", "-q", "-F", os.devnull, "-P", str(t.port), "-o", f"UserKnownHostsFile={t.known_hosts}",
                    "-o", "StrictHostKeyChecking=yes", "-i", str(t.key_path)]
        self.user_host = f"{t.user}@{t.host}" if t.user else t.host


def timed(argv: list[str]) -> float:
    t0 = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


async def setup(work: Path, clouds: Path) -> World:
    from tui.core.cloud.launch import plan_launch
    from tui.core.config import Settings, SSHSettings
    from tui.core.engine import open_cloud
    from tui.core.services import Services, launch_instance

    for var in ("XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        os.environ[var] = str(work / var.lower())
    settings = Settings(cloud="sandbox", clouds_yaml=str(clouds), ssh=SSHSettings(use_ssh_config=False))
    services = Services(settings)
    cloud = await asyncio.to_thread(open_cloud, settings)
    plan = plan_launch("xfer", flavors=cloud.list_flavors(), images=cloud.list_images(),
                       networks=cloud.list_networks(), quota=cloud.get_quota(), key_name="")
    inst = await asyncio.to_thread(launch_instance, cloud, plan.spec, lambda _: None, services.keystore)
    world = World(settings, cloud, services, inst, work / "cloud" / "instances" / inst.id / "home")
    assert world.home.is_dir(), world.home
    await world.openssh_args()
    return world


async def large(w: World, work: Path, size: int, rounds: int, goals: Goals) -> None:
    src = work / "large.bin"
    make_large(src, size)
    digest = sha(src)
    ours, scp = [], []
    for r in range(rounds):
        for target in ("ours.bin", "scp.bin"):
            (w.home / target).unlink(missing_ok=True)
        if r % 2:  # alternate who goes first: the second meets the first's write-back
            t, s = await w.transfer("cp", str(src), f"{w.inst.name}:ours.bin")
            scp.append(timed([*w.scp, str(src), f"{w.user_host}:scp.bin"]))
        else:
            scp.append(timed([*w.scp, str(src), f"{w.user_host}:scp.bin"]))
            t, s = await w.transfer("cp", str(src), f"{w.inst.name}:ours.bin")
        ours.append(t)
        assert s.bytes == size and sha(w.home / "ours.bin") == digest, s
        print(f"  round {r + 1}: scp {scp[-1]:.2f} s, ours {t:.2f} s ({s.via})")
    mb = size / (1 << 20)
    best_ours, best_scp = min(ours), min(scp)
    print(f"large file {mb:.0f} MiB up: ours {mb / best_ours:.0f} MiB/s, scp {mb / best_scp:.0f} MiB/s")
    goals.check("one large file vs scp", best_scp / best_ours >= GOAL_LARGE,
                f"{best_scp / best_ours:.2f}x scp's throughput (goal ≥ {GOAL_LARGE}x)")
    t, s = await w.transfer("cp", f"{w.inst.name}:ours.bin", str(work / "down.bin"))
    t_scp = timed([*w.scp, f"{w.user_host}:scp.bin", str(work / "scp-down.bin")])
    print(f"  down (shown, no goal): ours {mb / t:.0f} MiB/s, scp {mb / t_scp:.0f} MiB/s ({t_scp / t:.2f}x)")
    for p in (work / "down.bin", work / "scp-down.bin"):
        p.unlink(missing_ok=True)


async def small(w: World, work: Path, n: int, rounds: int, goals: Goals) -> None:
    """Into an empty folder (`rounds` times, who goes first alternating), then again with nothing changed (three
    times as many rounds, alternating); medians compared."""
    src = work / "small"
    make_small(src, n)
    rsync = ["rsync", "-a", "-e", shlex.join(w.ssh), f"{src}/", f"{w.user_host}:rsync-small/"]
    ours_t: list[float] = []
    rsync_t: list[float] = []
    for r in range(rounds):
        for d in ("ours-small", "rsync-small"):
            shutil.rmtree(w.home / d, ignore_errors=True)
        for who in (("ours", "rsync") if r % 2 else ("rsync", "ours")):
            if who == "rsync":
                rsync_t.append(timed(rsync))
            else:
                t, s = await w.transfer("sync", str(src), f"{w.inst.name}:ours-small")
                assert s.transferred == n, s
                ours_t.append(t)
    t_ours, t_rsync = statistics.median(ours_t), statistics.median(rsync_t)
    print(f"{n} files of 4 KB into an empty folder (medians of {rounds}): ours {t_ours:.2f} s ({s.via}), "
          f"rsync -a {t_rsync:.2f} s")
    goals.check("10,000 small files vs rsync -a", t_rsync / t_ours >= GOAL_SMALL,
                f"{t_rsync / t_ours:.2f}x rsync's speed (goal ≥ {GOAL_SMALL}x)")
    ours_t, rsync_t = [], []
    for r in range(3 * rounds):
        for who in (("ours", "rsync") if r % 2 else ("rsync", "ours")):
            if who == "rsync":
                rsync_t.append(timed(rsync))
            else:
                t, s = await w.transfer("sync", str(src), f"{w.inst.name}:ours-small")
                assert s.transferred == 0 and s.bytes == 0 and s.skipped == n, s
                ours_t.append(t)
    t_ours2, t_rsync2 = statistics.median(ours_t), statistics.median(rsync_t)
    print(f"re-sync, nothing changed (medians of {3 * rounds}): ours {t_ours2:.2f} s, rsync -a {t_rsync2:.2f} s")
    goals.check("re-sync with nothing changed vs rsync -a", t_ours2 / t_rsync2 <= GOAL_RESYNC,
                f"{t_ours2 / t_rsync2:.2f}x rsync's time (goal ≤ {GOAL_RESYNC}x)")


async def resume(w: World, work: Path, size: int, goals: Goals) -> None:
    src = work / "large.bin"
    (w.home / "resumed.bin").unlink(missing_ok=True)
    _, cut = await w.transfer("cp", str(src), f"{w.inst.name}:resumed.bin", cut_at=0.5)
    part = w.home / ".resumed.bin.cades-part"
    assert cut is None and part.exists() and not (w.home / "resumed.bin").exists()
    had = part.stat().st_size
    t, s = await w.transfer("cp", str(src), f"{w.inst.name}:resumed.bin")
    assert sha(w.home / "resumed.bin") == sha(src), "the resumed file's SHA-256 is wrong"
    share = s.bytes / size
    print(f"resume after a cut at 50 %: the partial held {had / size:.0%}; the second run moved {share:.1%} of the "
          f"bytes in {t:.2f} s ({s.resumed / size:.0%} kept after its prefix hashed alike on both sides)")
    goals.check("a resume after a cut at 50 %", share <= GOAL_RESUME, f"{share:.1%} of the bytes moved "
                f"(goal ≤ {GOAL_RESUME:.0%})")


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024, help="the large file (MB)")
    ap.add_argument("--files", type=int, default=10_000, help="small files of 4 KB")
    ap.add_argument("--rounds", type=int, default=2, help="rounds per comparison (who goes first alternates)")
    args = ap.parse_args()
    for tool in ("ssh", "scp", "rsync"):
        if shutil.which(tool) is None:
            print(f"{tool} not found: the baselines need OpenSSH and rsync")
            return 2
    goals = Goals()
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as tmp:
        work = Path(tmp)
        with separate_sandbox(work / "cloud", 0, ssh=True) as clouds:
            w = await setup(work, clouds)
            await large(w, work, args.size << 20, args.rounds, goals)
            await small(w, work, args.files, args.rounds, goals)
            await resume(w, work, args.size << 20, goals)
    return goals.exit_code()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
