"""The words of a delete (pure): plurals, each volume named with its server, Jupyter said only when it runs, and
which instances count as what a deleted head left."""

from __future__ import annotations

from tui.core.cluster.deletion import Deletion, cluster_delete_text, plural, scale_down_text, volume_phrase
from tui.core.cluster.teardown import find_leftovers
from tui.core.models import Instance, Volume


def inst(name: str) -> Instance:
    return Instance(id=f"id-{name}", name=name, status="ACTIVE")


def boot(server: str, size: int = 16, name: str = "") -> Volume:
    return Volume(id=f"vol-{server}", name=name or f"vol-{server}", size_gb=size, status="in-use",
                  attached_to=(f"id-{server}",), bootable=True)


def test_plurals_and_volume_names() -> None:
    assert [plural(n, "volume") for n in (0, 1, 2)] == ["0 volumes", "1 volume", "2 volumes"]
    v = Volume(id="abc", name="abc", size_gb=16, status="in-use", bootable=True)  # unnamed: named by its id
    assert volume_phrase(v, "vm1-w2") == "boot volume of vm1-w2, 16 GB"
    assert volume_phrase(Volume(id="d", name="data", size_gb=20, status="in-use"), "vm1") == "volume data of vm1, 20 GB"
    named_boot = Volume(id="b", name="sys", size_gb=16, status="in-use", bootable=True)
    assert volume_phrase(named_boot, "vm1") == "boot volume sys of vm1, 16 GB"


def test_the_prompt_of_a_head_says_what_goes_with_it() -> None:
    head, w1, w2 = inst("vm1"), inst("vm1-w1"), inst("vm1-w2")
    plan = Deletion(head, (boot("vm1"),), (w1, w2), (boot("vm1-w1"), boot("vm1-w2")), "cades-dask-vm1", tasks=1)
    text = plan.prompt(delete_volumes=False)
    assert "Its 1 volume (boot volume of vm1, 16 GB) will be kept (use --delete-volumes to delete it)" in text, text
    assert "vm1 heads a Dask cluster: deleting it deletes the cluster too — 2 worker instances (vm1-w1, vm1-w2)" in text
    assert "their 2 volumes (boot volume of vm1-w1, 16 GB; boot volume of vm1-w2, 16 GB)" in text
    assert "the security group cades-dask-vm1" in text and "1 task is running and will be lost" in text
    assert "Jupyter" not in text
    alone = Deletion(inst("solo"), jupyter="Jupyter is running on solo: …")
    assert alone.cluster_text() == "" and "Jupyter is running on solo" in alone.prompt(False)
    assert "It has no volumes." in alone.prompt(False)


def test_the_cluster_delete_text_says_jupyter_only_when_it_runs() -> None:
    w1 = inst("vm1-w1")
    without = cluster_delete_text("vm1", [w1], [boot("vm1-w1")], "cades-dask-vm1", 0, jupyter=False)
    assert "Jupyter" not in without and "vm1 stays" in without
    assert "1 worker instance (vm1-w1), their 1 volume (boot volume of vm1-w1, 16 GB)" in without
    assert "vm1 stays and its Jupyter keeps running" in cluster_delete_text("vm1", [], [], "", 2, jupyter=True)
    assert "Retire and delete 1 worker instance: vm1-w1, with their 1 volume" in scale_down_text([w1],
                                                                                                [boot("vm1-w1")])


def test_leftovers_are_marked_by_the_cluster_group() -> None:
    instances = [inst("gone-w1"), inst("gone-w2"), inst("alive"), inst("alive-w1"), inst("mine-w1")]
    groups = ["default", "cades-dask-gone", "cades-dask-alive", "cades-dask-ghost"]
    found = {x.head: x for x in find_leftovers(instances, [boot("gone-w1")], groups)}
    assert sorted(found) == ["ghost", "gone"]  # alive has its head; mine-w1 has no group: the user's own
    assert [w.name for w in found["gone"].workers] == ["gone-w1", "gone-w2"]
    assert found["gone"].group == "cades-dask-gone" and len(found["gone"].volumes) == 1
    assert found["ghost"].workers == () and found["ghost"].group == "cades-dask-ghost"
    assert "2 worker instances (gone-w1, gone-w2; boot volume of gone-w1, 16 GB)" in found["gone"].text()
    # Named by the user (`cluster delete mine`): its workers by name, although no group marks them.
    assert [w.name for w in find_leftovers(instances, [], groups, only="mine")[0].workers] == ["mine-w1"]
    assert find_leftovers(instances, [], groups, only="alive") == []
