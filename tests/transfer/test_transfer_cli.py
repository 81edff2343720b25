"""`cades-tui cp` and `sync` against a sandbox instance (a real sshd; its home is a folder here, so what arrived is
read directly): up and down, files and folders, skipping unchanged, --delete, --exclude, resume after SIGKILL, a
corrupted partial file, a cluster worker reached through its head, bad input."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests._support import wait_until

Cli = Callable[..., tuple[str, str]]
pytestmark = pytest.mark.timeout(300)


def home(world: Any) -> Path:
    return Path(world.sandbox.ssh_host(world.iid).home)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def make_tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a.txt").write_text("alpha\n")
    (root / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    (root / "sub" / "deeper" / "c.csv").write_text("x,y\n1,2\n")


def summary(out: str) -> dict[str, Any]:
    return dict(json.loads(out))


def test_cp_a_file_up_and_down_keeps_bytes_and_mtime(cli: Cli, cli_world: Any, tmp_path: Path) -> None:
    src = tmp_path / "data.bin"
    src.write_bytes(os.urandom(1_500_000))
    os.utime(src, (1_600_000_000, 1_600_000_000))
    out, _ = cli("cp", str(src), f"{cli_world.name}:~/up.bin")
    assert out.startswith("1 file, 1 transferred (1.4 MiB), 0 skipped in "), out
    remote = home(cli_world) / "up.bin"
    assert sha(remote) == sha(src) and int(remote.stat().st_mtime) == 1_600_000_000
    assert not list(home(cli_world).glob(".*.cades-part"))

    (home(cli_world) / "in-home.txt").write_text("relative to the VM's home\n")
    cli("cp", f"{cli_world.name}:in-home.txt", str(tmp_path) + "/")  # into a folder: the same name
    assert (tmp_path / "in-home.txt").read_text() == "relative to the VM's home\n"
    out, _ = cli("cp", f"{cli_world.name}:up.bin", str(tmp_path / "down.bin"), "--json")
    assert sha(tmp_path / "down.bin") == sha(src) and summary(out)["transferred"] == 1


def test_cp_a_folder_up_and_down(cli: Cli, cli_world: Any, tmp_path: Path) -> None:
    make_tree(tmp_path / "proj")
    _, err = cli("cp", str(tmp_path / "proj"), f"{cli_world.name}:", expect=2)
    assert "is a folder" in err and "-r" in err
    cli("cp", "-r", str(tmp_path / "proj"), f"{cli_world.name}:")  # into the home: ~/proj
    assert tree(home(cli_world) / "proj") == tree(tmp_path / "proj")
    assert (home(cli_world) / "proj" / "empty").is_dir()
    cli("cp", "-r", f"{cli_world.name}:proj", str(tmp_path / "back"))  # a new folder: becomes the copy
    assert tree(tmp_path / "back") == tree(tmp_path / "proj") and (tmp_path / "back" / "empty").is_dir()


def test_sync_skips_unchanged_deletes_and_excludes(cli: Cli, cli_world: Any, tmp_path: Path) -> None:
    local = tmp_path / "work"
    make_tree(local)
    (local / "run.log").write_text("noise")
    dest = f"{cli_world.name}:synced"
    out, _ = cli("sync", str(local), dest, "--exclude", "*.log", "--json")
    first = summary(out)
    assert first["transferred"] == 3 and first["files"] == 3
    remote = home(cli_world) / "synced"
    assert not (remote / "run.log").exists() and tree(remote) == {k: v for k, v in tree(local).items()
                                                                 if k != "run.log"}
    out, _ = cli("sync", str(local), dest, "--exclude", "*.log", "--json")
    again = summary(out)
    assert again["bytes"] == 0 and again["transferred"] == 0 and again["skipped"] == 3

    (local / "a.txt").write_text("changed, longer\n")
    (remote / "stale.txt").write_text("only there")
    (home(cli_world) / "outside.txt").write_text("not in the destination")
    out, err = cli("sync", str(local), dest, "--exclude", "*.log", "--delete")
    assert "1 transferred" in out and "2 skipped" in out and "1 deleted" in out
    assert "Deleting 1 not in the source: stale.txt" in err
    assert not (remote / "stale.txt").exists() and (home(cli_world) / "outside.txt").exists()
    assert (remote / "a.txt").read_text() == "changed, longer\n"

    out, _ = cli("sync", str(local), dest, "--exclude", "*.log", "--checksum", "--json")
    assert summary(out)["skipped"] == 3

    back = tmp_path / "back"
    cli("sync", dest, str(back))
    assert tree(back) == tree(remote)
    out, _ = cli("sync", dest, str(back), "--json")
    assert summary(out)["bytes"] == 0


def _start_cp(env: dict[str, str], *args: str, err: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tui", "cp", *args], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=err.open("wb"))


@pytest.mark.parametrize("path", ["openssh", "asyncssh"])
def test_resume_after_sigkill_moves_only_the_rest(cli: Cli, cli_world: Any, subprocess_env: dict[str, str],
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  path: str) -> None:
    size = 400 << 20
    src = tmp_path / "big.bin"
    with src.open("wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    name = f"big-{path}.bin"
    part, final = home(cli_world) / f".{name}.cades-part", home(cli_world) / name
    env = {**subprocess_env, "CADES_TUI_TRANSFER_PATH": path}
    proc = _start_cp(env, str(src), f"{cli_world.name}:{name}", err=tmp_path / "err")
    try:
        wait_until(lambda: (part.exists() and part.stat().st_size >= size // 5) or proc.poll() is not None, 120,
                   "a partial file of a fifth of the size")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    had = part.stat().st_size
    assert 0 < had < size, (had, (tmp_path / "err").read_text())
    assert not final.exists()  # nothing under the final name while the data is partial
    monkeypatch.setenv("CADES_TUI_TRANSFER_PATH", path)
    out, _ = cli("cp", str(src), f"{cli_world.name}:{name}", "--json")
    s = summary(out)
    assert s["resumed"] >= had * 0.9 and s["bytes"] == size - s["resumed"], (s, had)
    assert sha(final) == sha(src) and not part.exists()


def test_a_corrupted_partial_is_not_trusted(cli: Cli, cli_world: Any, tmp_path: Path) -> None:
    src = tmp_path / "f.bin"
    body = os.urandom(2_000_000)
    src.write_bytes(body)
    part = home(cli_world) / ".corrupt.bin.cades-part"
    part.write_bytes(body[:1_000_000][::-1])  # as long as a real half, other bytes
    out, err = cli("cp", str(src), f"{cli_world.name}:corrupt.bin", "--json")
    assert "does not match the source; starting it over" in err
    s = summary(out)
    assert s["resumed"] == 0 and s["bytes"] == len(body)
    assert sha(home(cli_world) / "corrupt.bin") == sha(src) and not part.exists()

    (tmp_path / "down").mkdir()
    (tmp_path / "down" / ".corrupt.bin.cades-part").write_bytes(b"\0" * 500_000)
    out, _ = cli("cp", f"{cli_world.name}:corrupt.bin", str(tmp_path / "down") + "/", "--json")
    assert summary(out)["resumed"] == 0 and sha(tmp_path / "down" / "corrupt.bin") == sha(src)


def test_to_a_cluster_worker_through_its_head(cli: Cli, cli_world: Any, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker (`HEAD-w1`, no public address) is reached through its head, each hop's host key pinned: up over
    the asyncssh connection, down over OpenSSH (its ProxyCommand hop built like `cades-tui ssh`'s)."""
    from dataclasses import replace

    from tui.core.cloud.base import LaunchSpec
    from tui.core.cloud.clouds_yaml import open_cloud
    from tui.core.services import launch_instance

    cloud = open_cloud("sandbox", str(cli_world.sandbox.clouds_yaml))
    head = cloud.get_instance(cli_world.name)
    network = next(a.network for a in head.addresses if a.kind == "fixed")
    flavor = next(f.id for f in cloud.list_flavors() if f.name == head.flavor_name)
    spec = LaunchSpec(name=f"{cli_world.name}-w1", image=cloud.boot_image(head.id), flavor=flavor,
                      key_name=head.key_name, network=network)
    worker = launch_instance(cloud, replace(spec, public_ip=False), lambda _: None)
    try:
        assert not worker.public_ip
        src = tmp_path / "to-worker.txt"
        src.write_text("through the head\n")
        cli("cp", str(src), f"{worker.name}:")
        whome = Path(cli_world.sandbox.ssh_host(worker.id).home)
        assert (whome / "to-worker.txt").read_text() == "through the head\n"
        monkeypatch.setenv("CADES_TUI_TRANSFER_PATH", "openssh")
        out, _ = cli("cp", f"{worker.name}:to-worker.txt", str(tmp_path / "back.txt"), "--json")
        assert summary(out)["via"] == "openssh"
        assert (tmp_path / "back.txt").read_text() == "through the head\n"
    finally:
        cloud.delete(worker.id, True)


def test_bad_input_is_one_line(cli: Cli, cli_world: Any, tmp_path: Path) -> None:
    for args, code, words in [
        (("cp", "a", "b"), 2, "both local"),
        (("cp", f"{cli_world.name}:a", f"{cli_world.name}:b"), 2, "both remote"),
        (("cp", str(tmp_path / "missing"), f"{cli_world.name}:"), 2, "no such file or folder"),
        (("cp", f"{cli_world.name}:no-such-file", str(tmp_path)), 1, "no such file or folder on"),
        (("cp", str(tmp_path), "nosuchvm:x"), 1, "not found"),
        (("sync", str(tmp_path / "x"), f"{cli_world.name}:"), 2, "no such file or folder"),
    ]:
        _, err = cli(*args, expect=code)
        lines = [line for line in err.splitlines() if line.startswith("cades-tui: error:")]
        assert len(lines) == 1 and words in lines[0] and "Traceback" not in err, (args, err)


def test_ctrl_c_exits_130_and_a_download_resumes(cli: Cli, cli_world: Any, subprocess_env: dict[str, str],
                                                  tmp_path: Path) -> None:
    size = 300 << 20
    remote = home(cli_world) / "down-big.bin"
    with remote.open("wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    part, final = tmp_path / ".down-big.bin.cades-part", tmp_path / "down-big.bin"
    proc = _start_cp(subprocess_env, f"{cli_world.name}:down-big.bin", str(tmp_path) + "/", err=tmp_path / "err")
    try:
        wait_until(lambda: (part.exists() and part.stat().st_size >= size // 5) or proc.poll() is not None, 120,
                   "a partial file of a fifth of the size")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = (tmp_path / "err").read_text()
    assert "partial files are kept" in err and "cades-tui cp" in err and "Traceback" not in err, err
    had = part.stat().st_size
    assert 0 < had < size and not final.exists()
    out, _ = cli("cp", f"{cli_world.name}:down-big.bin", str(tmp_path) + "/", "--json")
    s = summary(out)
    assert s["resumed"] == had and s["bytes"] == size - had
    assert sha(final) == sha(remote) and not part.exists()
    out, _ = cli("cp", f"{cli_world.name}:down-big.bin", str(tmp_path / "again.bin"), "--no-verify")
    assert "1 transferred (300.0 MiB)" in out and sha(tmp_path / "again.bin") == sha(remote)


def test_many_small_files_go_over_streams_side_by_side(cli: Cli, cli_world: Any, tmp_path: Path) -> None:
    from tui.core.transfer.runner import MANY_FILES

    local = tmp_path / "many"
    for i in range(MANY_FILES + 44):
        (local / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
        (local / f"d{i % 7}" / f"f{i}.txt").write_text(f"file {i}\n" * (i % 50))
    out, _ = cli("sync", str(local), f"{cli_world.name}:many", "--json")
    assert summary(out)["transferred"] == MANY_FILES + 44
    assert tree(home(cli_world) / "many") == tree(local)
    back = tmp_path / "back"
    out, _ = cli("sync", f"{cli_world.name}:many", str(back), "--json")
    assert summary(out)["transferred"] == MANY_FILES + 44 and tree(back) == tree(local)
    out, _ = cli("sync", str(local), f"{cli_world.name}:many", "--json")
    assert summary(out)["bytes"] == 0 and summary(out)["skipped"] == MANY_FILES + 44


def links(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): os.readlink(p) for p in sorted(root.rglob("*")) if p.is_symlink()}


def test_symlinks_are_copied_as_links_both_ways(cli: Cli, cli_world: Any, tmp_path: Path) -> None:
    proj = tmp_path / "lproj"
    make_tree(proj)
    (proj / "to-a").symlink_to("a.txt")
    (proj / "sub" / "up").symlink_to("../a.txt")
    (proj / "abs").symlink_to(str(tmp_path / "outside"))  # out of the tree: still a link, never followed
    (proj / "sub" / "dirlink").symlink_to("deeper")
    (tmp_path / "outside").write_text("never copied")
    out, _ = cli("cp", "-r", str(proj), f"{cli_world.name}:", "--json")  # up: ~/lproj
    first = summary(out)
    assert (first["links"], first["links_copied"], first["transferred"]) == (4, 4, 3)
    remote = home(cli_world) / "lproj"
    assert links(remote) == links(proj) and tree(remote) == tree(proj)

    cli("cp", "-r", f"{cli_world.name}:lproj", str(tmp_path / "back"))  # down
    assert links(tmp_path / "back") == links(proj) and tree(tmp_path / "back") == tree(proj)
    cli("cp", str(proj / "to-a"), f"{cli_world.name}:via-link.txt")  # one file named: what it points to, as scp
    cli("cp", f"{cli_world.name}:lproj/to-a", str(tmp_path / "via-link.txt"))
    for copy in (home(cli_world) / "via-link.txt", tmp_path / "via-link.txt"):
        assert not copy.is_symlink() and copy.read_text() == "alpha\n"
    assert links(tmp_path / "back") == links(proj) and tree(tmp_path / "back") == tree(proj)

    out, _ = cli("sync", str(proj), f"{cli_world.name}:lproj")  # nothing changed: every link skipped
    assert "4 links (0 copied)" in out, out
    (proj / "to-a").unlink()
    (proj / "to-a").symlink_to("sub/b.bin")  # retargeted
    (proj / "abs").unlink()
    out, err = cli("sync", str(proj), f"{cli_world.name}:lproj", "--delete", "--json")
    again = summary(out)
    assert (again["links"], again["links_copied"], again["deleted"]) == (3, 1, ["abs"]), again
    assert links(remote) == links(proj) and "abs" in err


def test_a_download_never_writes_through_a_link(cli: Cli, cli_world: Any, tmp_path: Path) -> None:
    """A malicious VM: its `evil/a` was a link to the user's ~/.ssh, so the last download made `got/a` that link;
    now the VM makes `a` a folder with an authorized_keys. The download replaces the local link by a folder and
    writes nothing into ~/.ssh — nor through a link pointing inside the tree. A link the VM has is downloaded as
    a link, its target text as it is."""
    dot_ssh, got = tmp_path / "dot-ssh", tmp_path / "got"
    dot_ssh.mkdir()
    (got / "inner").mkdir(parents=True)
    (got / "a").symlink_to(dot_ssh)
    (got / "i").symlink_to("inner")
    evil = home(cli_world) / "evil"
    (evil / "a").mkdir(parents=True)
    (evil / "a" / "authorized_keys").write_text("ssh-ed25519 AAAA attacker\n")
    (evil / "i").mkdir()
    (evil / "i" / "f").write_text("x\n")
    out, _ = cli("sync", f"{cli_world.name}:evil", str(got), "--json")
    assert summary(out)["transferred"] == 2
    assert list(dot_ssh.iterdir()) == [] and list((got / "inner").iterdir()) == []
    assert not (got / "a").is_symlink() and (got / "a" / "authorized_keys").exists()
    assert not (got / "i").is_symlink() and (got / "i" / "f").read_text() == "x\n"

    (evil / "ssh").symlink_to(dot_ssh)
    cli("cp", "-r", f"{cli_world.name}:evil", str(tmp_path / "fresh"))
    assert os.readlink(tmp_path / "fresh" / "ssh") == str(dot_ssh) and list(dot_ssh.iterdir()) == []
