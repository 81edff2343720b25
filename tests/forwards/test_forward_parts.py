"""The pure parts of forwards: what `ss` or /proc/net/tcp say is listening, labels and ports, the saved forwards
for ssh-config, and the state operations (under the lock, merged with other writers)."""

from __future__ import annotations

from pathlib import Path

from tui.core.forwards import Forward, label_of, label_problem, local_forwards, port_problem, purpose_of
from tui.core.forwards.listening import PROC_MARK, parse
from tui.core.models import Instance
from tui.core.state import AppState, ForwardRecord, TunnelRecord

SS = """\
LISTEN 0      128          0.0.0.0:22        0.0.0.0:*
LISTEN 0      5          127.0.0.1:8000      0.0.0.0:*    users:(("python3",pid=4242,fd=3))
LISTEN 0      128        127.0.0.1:2222      0.0.0.0:*    users:(("sshd",pid=17,fd=4))
LISTEN 0      4096   127.0.0.53%lo:53        0.0.0.0:*
LISTEN 0      511             [::]:6006         [::]:*    users:(("tensorboard",pid=9,fd=7))
LISTEN 0      511          0.0.0.0:6006      0.0.0.0:*    users:(("tensorboard",pid=9,fd=6))
LISTEN 0      128         10.0.0.5:8786      0.0.0.0:*    users:(("dask",pid=5,fd=9))
"""

PROC = f"""{PROC_MARK}
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:1F40 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 0 1 0 100 0 0 10 0
  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 00000000000000000000000000000000:178E 00000000000000000000000000000000:0000 0A 00000000:00000000
"""


def test_ss_output_gives_one_listener_per_port_without_sshd() -> None:
    found = parse(SS, ssh_port=2222)
    assert [(x.port, x.address, x.process) for x in found] == [
        (53, "127.0.0.53", ""), (6006, "0.0.0.0", "tensorboard"), (8000, "127.0.0.1", "python3"),
        (8786, "10.0.0.5", "dask")]
    assert [x.remote_host for x in found] == ["127.0.0.53", "127.0.0.1", "127.0.0.1", "10.0.0.5"]


def test_proc_net_tcp_when_ss_is_missing() -> None:
    found = parse(PROC)
    assert [(x.port, x.address) for x in found] == [(6030, "::"), (8000, "127.0.0.1")]  # 22 (sshd) left out


def test_labels_ports_and_purposes() -> None:
    assert label_problem("tensorboard") is None and label_problem("a.b_c-1") is None
    assert label_problem("a b") and label_problem("-x") and label_problem("x" * 33) and label_problem("")
    assert port_problem(0) and port_problem(65536) and port_problem(443) is None
    assert label_of(purpose_of("web")) == "web" and label_of("jupyter") is None
    fwd = Forward("id", "vm", "web", "127.0.0.1", 8000, 40000, saved=False, enabled=True, state="up",
                  wanted_port=8000)
    assert fwd.port_taken and fwd.taken_note() == "local port 8000 is taken here; using 40000 instead"
    assert fwd.url == "http://127.0.0.1:40000/"


def test_saved_forwards_for_ssh_config_by_instance_name(tmp_path: Path) -> None:
    state = AppState(tmp_path / "state.json")
    state.put_forward(ForwardRecord("id-1", "web", 8000, local_port=18000, name="vm1"))
    state.put_forward(ForwardRecord("id-1", "tb", 6006, name="vm1", enabled=False))
    state.put_forward(ForwardRecord("id-2", "db", 5432, "10.0.0.7", 15432, name="old-name"))
    assert local_forwards(state) == {"vm1": [(6006, "127.0.0.1", 6006), (18000, "127.0.0.1", 8000)],
                                     "old-name": [(15432, "10.0.0.7", 5432)]}
    renamed = [Instance(id="id-2", name="db-vm", status="ACTIVE")]
    assert local_forwards(state, renamed) == {"db-vm": [(15432, "10.0.0.7", 5432)]}


def test_forward_operations_merge_with_other_writers(tmp_path: Path) -> None:
    one, two = AppState(tmp_path / "state.json"), AppState(tmp_path / "state.json")
    one.put_forward(ForwardRecord("id-1", "web", 8000, name="vm1"))
    two.put_tunnel(TunnelRecord("id-1", "jupyter", 8889))
    two.put_forward(ForwardRecord("id-1", "tb", 6006, name="vm1"))
    assert set(one.forwards) == {("id-1", "web"), ("id-1", "tb")} and one.tunnel("id-1") is not None
    one.drop_forward("id-1", "web")
    assert set(two.forwards) == {("id-1", "tb")}
    two.forget_instance("id-1")
    assert not one.forwards
