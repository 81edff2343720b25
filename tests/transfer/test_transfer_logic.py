"""The pure parts of transfers: `NAME:path` parsing, excludes, paths kept inside the destination, the plan, and
the frame stream between `send_files` and `recv_files` (both ends of the helper, here in one process)."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest

from tui.core.cloud.base import InvalidInput
from tui.core.transfer import helper
from tui.core.transfer.models import Endpoint, TransferRequest, parse_endpoint
from tui.core.transfer.plan import make_plan


@pytest.mark.parametrize(("text", "instance", "path"), [
    ("vm:data/x.csv", "vm", "data/x.csv"),
    ("vm:", "vm", ""),
    ("vm:~/x", "vm", "~/x"),
    ("vm:/abs/x", "vm", "/abs/x"),
    ("./a:b", "", "./a:b"),
    ("dir/a:b", "", "dir/a:b"),
    ("/tmp/a:b", "", "/tmp/a:b"),
    ("~/a:b", "", "~/a:b"),
    ("C:\\x\\y", "", "C:\\x\\y"),
    ("C:/x", "", "C:/x"),
    ("plain.txt", "", "plain.txt"),
])
def test_endpoints_in_scps_form(text: str, instance: str, path: str) -> None:
    assert parse_endpoint(text) == Endpoint(instance, path)


def test_both_local_or_both_remote_is_refused() -> None:
    with pytest.raises(InvalidInput, match="both local"):
        TransferRequest("cp", parse_endpoint("a"), parse_endpoint("b")).remote_side()
    with pytest.raises(InvalidInput, match="both remote"):
        TransferRequest("cp", parse_endpoint("vm:a"), parse_endpoint("vm:b")).remote_side()
    assert TransferRequest("cp", parse_endpoint("a"), parse_endpoint("vm:b")).remote_side() == Endpoint("vm", "b")


def test_excludes_match_names_at_any_depth_or_paths() -> None:
    assert helper.excluded("a/b/x.log", ["*.log"])
    assert helper.excluded("node_modules", ["node_modules/"])
    assert helper.excluded("a/cache/x", ["a/cache/*"])
    assert not helper.excluded("b/cache/x", ["a/cache/*"])
    assert not helper.excluded("a/x.txt", ["*.log"])


@pytest.mark.parametrize("rel", ["../x", "a/../../x", "/etc/passwd", "a\\..\\x", ""])
def test_paths_outside_the_destination_are_refused(tmp_path: Path, rel: str) -> None:
    with pytest.raises(ValueError, match="outside"):
        helper.inside(str(tmp_path), rel)


def test_a_symlinked_folder_pointing_out_is_refused(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path / "out")
    with pytest.raises(ValueError, match="outside"):
        helper.inside(str(tmp_path / "root"), "link/x")


def _listing(files: dict[str, list[int]], dirs: list[str] = (), parts: dict[str, int] | None = None) -> Any:
    return {"files": files, "dirs": list(dirs), "parts": parts or {}}


def test_plan_skips_unchanged_resumes_parts_and_deletes_only_what_is_not_in_the_source() -> None:
    ns = 10**9
    src = _listing({"same": [5, 100 * ns + 7, 0o644], "newer": [5, 200 * ns, 0o644], "new": [10, ns, 0o644]},
                   ["d"])
    dst = _listing({"same": [5, 100 * ns, 0o644], "newer": [5, 100 * ns, 0o644], "old": [1, ns, 0o644]},
                   ["gone"], {"new": 4})
    plan = make_plan(src, dst, [(r, r) for r in sorted(src["files"])], skip_unchanged=True, checksum=False,
                     delete=True)
    assert plan.skipped == ["same"]
    assert sorted(i.dst for i in plan.send) == ["new", "newer"]
    assert [(i.dst, i.offset) for i in plan.resume] == [("new", 4)]
    assert plan.delete_files == ["old"] and plan.delete_dirs == ["gone"] and plan.dirs == ["d"]
    checked = make_plan(src, dst, [(r, r) for r in sorted(src["files"])], skip_unchanged=True, checksum=True,
                        delete=False)
    assert sorted(i.dst for i in checked.same_size) == ["newer", "same"] and not checked.delete_files


def _stream(src: Path, files: list[list[Any]], verify: bool = True) -> bytes:
    out = io.BytesIO()
    helper.send_files(str(src), files, verify, out)
    return out.getvalue()


def test_frames_arrive_verified_with_the_mtime_and_no_partial_left(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.bin").write_bytes(os.urandom(helper.THREADED_FROM + 5))  # hashed in a thread
    os.utime(src / "sub" / "a.bin", ns=(1_500_000_000_123_456_789,) * 2)
    results: list[dict[str, Any]] = []
    data = _stream(src, [["sub", "sub", -1], ["sub/a.bin", "sub/a.bin", 0]])
    assert helper.recv_files(str(dst), io.BytesIO(data), results.append) is True
    assert results == [{"p": "sub/a.bin", "ok": True, "why": ""}]
    assert (dst / "sub" / "a.bin").read_bytes() == (src / "sub" / "a.bin").read_bytes()
    assert (dst / "sub" / "a.bin").stat().st_mtime_ns == 1_500_000_000_123_456_789
    assert not list(dst.rglob("*.cades-part"))


def test_a_cut_stream_leaves_only_the_partial_and_a_resume_completes_it(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    body = os.urandom(2 * helper.CHUNK)
    (src / "f").write_bytes(body)
    data = _stream(src, [["f", "f", 0]])
    cut = data[: len(data) // 2]
    assert helper.recv_files(str(dst), io.BytesIO(cut), lambda r: None) is False
    part = dst / ".f.cades-part"
    assert part.exists() and not (dst / "f").exists()
    have = part.stat().st_size
    assert helper.hashes(str(dst), [["f", have, True]]) == helper.hashes(str(src), [["f", have, False]])
    results: list[dict[str, Any]] = []
    assert helper.recv_files(str(dst), io.BytesIO(_stream(src, [["f", "f", have]])), results.append)
    assert results[0]["ok"] and (dst / "f").read_bytes() == body and not part.exists()


def test_a_corrupted_stream_is_refused_and_its_partial_dropped(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "f").write_bytes(b"x" * 1000)
    data = bytearray(_stream(src, [["f", "f", 0]]))
    data[data.index(b"x") + 10] = ord("y")
    results: list[dict[str, Any]] = []
    assert helper.recv_files(str(dst), io.BytesIO(bytes(data)), results.append)
    assert not results[0]["ok"] and "SHA-256 mismatch" in results[0]["why"]
    assert not (dst / "f").exists() and not (dst / ".f.cades-part").exists()


def test_a_peer_naming_a_file_outside_the_destination_writes_nothing(tmp_path: Path) -> None:
    evil = b'{"p": "../escaped", "n": 1, "o": 0, "t": 0, "m": 420}\nx' + hashlib.sha256(b"x").hexdigest().encode()
    (tmp_path / "dst").mkdir()
    with pytest.raises(ValueError, match="outside"):
        helper.recv_files(str(tmp_path / "dst"), io.BytesIO(evil + b"\n"), lambda r: None)
    with pytest.raises(ValueError, match="not asked for"):
        helper.recv_files(str(tmp_path / "dst"), io.BytesIO(evil + b"\n"), lambda r: None, allowed={"a"})
    assert not (tmp_path / "escaped").exists() and not list(tmp_path.rglob("*escaped*"))


def test_delete_stays_inside_the_destination(tmp_path: Path) -> None:
    (tmp_path / "dst" / "d").mkdir(parents=True)
    (tmp_path / "dst" / "d" / "x").write_text("x")
    (tmp_path / "keep").write_text("k")
    done = helper.delete(str(tmp_path / "dst"), ["d/x", "../keep"], ["d"])
    assert done["deleted"] == ["d/x", "d/"] and "../keep" in done["kept"][0]
    assert (tmp_path / "keep").exists()


def test_the_summary_line_and_the_progress_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.cli.transfer import Bar, summary_line
    from tui.core.transfer.models import TransferProgress, TransferSummary

    s = TransferSummary(files=12, transferred=3, skipped=9, bytes=5 << 20, resumed=1 << 20, seconds=2.0)
    assert summary_line(s) == "12 files, 3 transferred (5.0 MiB, 1.0 MiB resumed), 9 skipped in 2.0 s, 2.5 MiB/s."
    assert summary_line(TransferSummary(files=1, skipped=1, seconds=0.05)) == \
        "1 file, 0 transferred (0 Bytes), 1 skipped in 0.1 s."
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    bar = Bar()
    bar(TransferProgress("data/x.bin", 50, 100, 50 << 20, 100 << 20, 10 << 20, 5.0, 0, 2))
    line = err.getvalue()
    assert line.startswith("\rdata/x.bin  50% 50.0 MiB/100.0 MiB 10.0 MiB/s ETA 5.0 s [0/2]"), line
    assert len(line) <= 80


# -- symbolic links: copied as links (rsync -a), never followed, never written through -------------------------


def _tree_with_links(src: Path) -> None:
    (src / "d").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "rel").symlink_to("a.txt")
    (src / "d" / "up").symlink_to("../a.txt")
    (src / "abs").symlink_to("/etc/passwd")  # absolute, out of the tree: still copied as a link
    (src / "dangling").symlink_to("nowhere/at/all")
    (src / "d" / "dirlink").symlink_to("..")  # a folder link: never descended into


def test_links_are_listed_with_their_target_and_never_followed(tmp_path: Path) -> None:
    _tree_with_links(tmp_path / "src")
    got = helper.stat_tree(str(tmp_path / "src"), None, [])
    assert {rel: t for rel, (t, _m) in got["links"].items()} == {
        "rel": "a.txt", "d/up": "../a.txt", "abs": "/etc/passwd", "dangling": "nowhere/at/all", "d/dirlink": ".."}
    assert sorted(got["files"]) == ["a.txt"] and got["dirs"] == ["d"]


def test_links_travel_as_links_and_replace_what_is_there(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _tree_with_links(src)
    (dst / "d").mkdir(parents=True)
    (dst / "rel").write_text("a file was here")  # replaced by the link
    (dst / "abs").symlink_to("elsewhere")  # another link: replaced
    (dst / "dangling").mkdir()  # a folder of that name stays, said
    links = sorted(helper.stat_tree(str(src), None, [])["links"])
    results: list[dict[str, Any]] = []
    data = _stream(src, [["d", "d", -1], *[[r, r, helper.LINK] for r in links], ["a.txt", "a.txt", 0]])
    assert helper.recv_files(str(dst), io.BytesIO(data), results.append)
    for rel in ("rel", "abs", "d/up", "d/dirlink"):
        assert os.readlink(dst / rel) == os.readlink(src / rel)
    failed = [r for r in results if not r["ok"]]
    assert [r["p"] for r in failed] == ["dangling"] and "a folder has that name" in failed[0]["why"]
    assert all(r.get("l") for r in results if r["p"] != "a.txt")
    assert Path("/etc/passwd").read_bytes() != b"" and not list(dst.rglob("*.cades-link"))


def test_a_link_on_the_way_is_replaced_by_a_folder_not_written_through(tmp_path: Path) -> None:
    """A malicious VM made `a` a link to the user's ~/.ssh (out of the tree), `i` one to a folder in the tree:
    files sent under them go into real folders of those names, never into the links' targets."""
    src, dst, victim = tmp_path / "src", tmp_path / "dst", tmp_path / "dot-ssh"
    (src / "a").mkdir(parents=True)
    (src / "i").mkdir()
    (src / "a" / "authorized_keys").write_text("ssh-ed25519 AAAA attacker\n")
    (src / "i" / "f").write_text("inside\n")
    (dst / "inner").mkdir(parents=True)
    victim.mkdir()
    (dst / "a").symlink_to(victim)
    (dst / "i").symlink_to("inner")
    results: list[dict[str, Any]] = []
    data = _stream(src, [["a/authorized_keys", "a/authorized_keys", 0], ["i/f", "i/f", 0]])
    assert helper.recv_files(str(dst), io.BytesIO(data), results.append)
    assert all(r["ok"] for r in results), results
    assert list(victim.iterdir()) == [] and list((dst / "inner").iterdir()) == []
    assert not (dst / "a").is_symlink() and (dst / "a" / "authorized_keys").read_text().endswith("attacker\n")
    assert not (dst / "i").is_symlink() and (dst / "i" / "f").read_text() == "inside\n"


def test_a_partial_file_planted_as_a_link_is_never_written_through(tmp_path: Path) -> None:
    src, dst, victim = tmp_path / "src", tmp_path / "dst", tmp_path / "victim"
    src.mkdir()
    dst.mkdir()
    (src / "f").write_bytes(b"new content")
    victim.write_bytes(b"precious")
    (dst / ".f.cades-part").symlink_to(victim)
    results: list[dict[str, Any]] = []
    assert helper.recv_files(str(dst), io.BytesIO(_stream(src, [["f", "f", 0]])), results.append)
    assert victim.read_bytes() == b"precious" and (dst / "f").read_bytes() == b"new content" and results[0]["ok"]


def test_reading_never_follows_a_link(tmp_path: Path) -> None:
    """The sender opens only regular files below ROOT: a name that became a link (or one under a link to
    outside) is an error frame, not the target's bytes."""
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    (out / "secret").write_text("not yours")
    (src / "f").symlink_to(out / "secret")
    (src / "o").symlink_to(out)
    frames = _stream(src, [["f", "f", 0], ["o/secret", "o/secret", 0]])
    assert b"not yours" not in frames and frames.count(b'"e": ') == 2


def test_plan_copies_links_skips_the_same_ones_and_deletes_links_not_in_the_source() -> None:
    src = {**_listing({"f": [1, 0, 0o644]}), "links": {"same": ["t", 0], "changed": ["new", 0], "added": ["x", 0]}}
    dst = {**_listing({"f": [1, 0, 0o644]}), "links": {"same": ["t", 0], "changed": ["old", 0], "stale": ["y", 0]}}
    plan = make_plan(src, dst, [("f", "f")], skip_unchanged=True, checksum=False, delete=True)
    assert [i.dst for i in plan.links] == ["added", "changed"] and plan.links_skipped == ["same"]
    assert plan.delete_files == ["stale"]
    copy = make_plan(src, dst, [("f", "f")], skip_unchanged=False, checksum=False, delete=False)
    assert [i.dst for i in copy.links] == ["added", "changed", "same"] and not copy.delete_files
