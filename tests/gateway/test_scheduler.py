"""Placement over several hosts (in-memory drivers with declared capacities): packing,
striping, storage affinity, refusals, and no overshoot under concurrent creates."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.store.models import EntityMixin, EntityRow, Host, Operation
from tests.gateway.conftest import (
    INFRA,
    Node,
    NodeFactory,
    compute_categories,
    entity_id,
    path_of,
    text_plain,
)

pytestmark = pytest.mark.redis

# small (4 cores, 4 GiB), medium (8, 8 GiB), big (16, 16 GiB)
HOSTS = {
    "small": "memory://small?cores=4&memory_mib=4096",
    "medium": "memory://medium?cores=8&memory_mib=8192",
    "big": "memory://big?cores=16&memory_mib=16384",
}


def sized(cores: int, gib: float) -> dict[str, Any]:
    return {"occi.compute.cores": cores, "occi.compute.memory": gib}


def host_of(node: Node, location: str) -> str:
    row = node.row(location)
    assert row is not None and row.host is not None
    return row.host


def used(node: Node) -> dict[str, tuple[int, int]]:
    with node.store.session() as session:
        return {host: (int(cores), int(memory)) for host, cores, memory in session.execute(
            select(EntityRow.host, func.sum(EntityRow.cores), func.sum(EntityRow.memory_mib))
            .where(EntityRow.host.is_not(None)).group_by(EntityRow.host))}


def test_hosts_register_their_declared_capacity(make_node: NodeFactory) -> None:
    node = make_node(HOSTS)
    with node.store.session() as session:
        hosts = {h.name: (h.cores, h.memory_mib) for h in session.scalars(select(Host))}
    assert hosts == {"small": (4, 4096), "medium": (8, 8192), "big": (16, 16384)}


def test_packing_fills_the_fullest_fitting_host_first(make_node: NodeFactory) -> None:
    node = make_node(HOSTS, placement_policy="packing")

    first = [node.create_compute(attributes=sized(1, 1.0)) for _ in range(4)]
    assert [host_of(node, x) for x in first] == ["small"] * 4  # small is full now
    fifth = node.create_compute(attributes=sized(1, 1.0))
    assert host_of(node, fifth) == "medium"
    too_big_for_medium = node.create_compute(attributes=sized(2, 8.0))
    assert host_of(node, too_big_for_medium) == "big"
    sixth = node.create_compute(attributes=sized(1, 1.0))
    assert host_of(node, sixth) == "medium"  # medium (7 GiB free) is fuller than big (8)

    node.run_jobs()

    for name in HOSTS:
        on_host = {c.id for c in node.driver(name).list_computes()}
        expected = {entity_id(x) for x in [*first, fifth, too_big_for_medium, sixth]
                    if host_of(node, x) == name}
        assert on_host == expected, name
    assert used(node) == {"small": (4, 4096), "medium": (2, 2048), "big": (2, 8192)}


def test_striping_spreads_over_the_emptiest_hosts(make_node: NodeFactory) -> None:
    node = make_node(HOSTS, placement_policy="striping")

    placed = [host_of(node, node.create_compute(attributes=sized(1, 4.0))) for _ in range(5)]

    # free memory before each: big 16, 12, then big 8 = medium 8 (big wins on free cores),
    # then medium 8 vs big 4, then small 4 = big 4 = medium 4 (big: most free cores)
    assert placed == ["big", "big", "big", "medium", "big"]


@pytest.mark.parametrize(("policy", "spread"), [("striping", 3), ("packing", 1)])
def test_equal_hosts_get_one_each_or_all_on_one(make_node: NodeFactory, policy: str,
                                                 spread: int) -> None:
    node = make_node({f"twin{i}": f"memory://twin{i}?cores=4&memory_mib=4096"
                      for i in range(3)}, placement_policy=policy)
    placed = [host_of(node, node.create_compute(attributes=sized(1, 1.0))) for _ in range(3)]
    assert len(set(placed)) == spread


def test_request_larger_than_any_host_is_503_and_leaves_nothing(make_node: NodeFactory) -> None:
    node = make_node(HOSTS)
    node.create_compute(attributes=sized(1, 1.0))
    before = used(node)
    with node.store.session() as session:
        operations = session.scalar(select(func.count()).select_from(Operation))

    response = node.post_text("/compute/", text_plain(compute_categories(),
                                                      sized(32, 2.0)))

    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    message = response.get_data(as_text=True)
    assert "32 free cores" in message and "2048 MiB" in message
    assert "largest free: 16 cores, 16384 MiB on big" in message
    assert node.count_entities() == 1
    assert used(node) == before
    with node.store.session() as session:
        assert session.scalar(select(func.count()).select_from(Operation)) == operations
        assert session.scalar(select(func.count()).select_from(EntityMixin)) == 1  # os_tpl
    node.run_jobs()
    assert sum(len(node.driver(h).list_computes()) for h in HOSTS) == 1


def test_no_enabled_host_is_503(make_node: NodeFactory) -> None:
    node = make_node(HOSTS)
    for name in HOSTS:
        node.disable_host(name)
    response = node.post_text("/compute/", text_plain(compute_categories()))
    assert response.status_code == 503
    assert "no hypervisor host" in response.get_data(as_text=True)
    assert node.count_entities() == 0


def test_compute_with_an_inline_storagelink_lands_on_the_storage_host(
        make_node: NodeFactory) -> None:
    node = make_node(HOSTS, placement_policy="striping")
    storage = node.create_storage(1.0)
    assert host_of(node, storage) == "big"
    node.create_compute(attributes=sized(1, 10.0))  # big: 6 GiB free, medium 8, small 4
    node.run_jobs()
    link = f'<{path_of(storage)}>; rel="{INFRA}storage"; category="{INFRA}storagelink"'

    plain = node.create_compute(attributes=sized(1, 1.0))
    linked = node.create_compute(attributes=sized(1, 1.0), links=[link])

    assert host_of(node, plain) == "medium"  # where striping puts a compute without disks
    assert host_of(node, linked) == "big"
    node.run_jobs()
    info = node.driver("big").compute_info(entity_id(linked))
    assert "vdb" in info.disks
    assert entity_id(storage) in {v.id for v in node.driver("big").list_volumes()}


def test_inline_storage_on_a_full_host_is_503(make_node: NodeFactory) -> None:
    node = make_node(HOSTS, placement_policy="packing")
    storage = node.create_storage(1.0)
    assert host_of(node, storage) == "small"
    node.create_compute(attributes=sized(4, 1.0))  # small has no core left
    link = f'<{path_of(storage)}>; rel="{INFRA}storage"; category="{INFRA}storagelink"'
    before = node.count_entities()

    response = node.post_text("/compute/", text_plain(compute_categories(), sized(1, 1.0),
                                                      links=[link]))

    assert response.status_code == 503
    assert "small" in response.get_data(as_text=True)
    assert node.count_entities() == before


def _create_concurrently(node: Node, count: int) -> list[int]:
    barrier = threading.Barrier(count)
    statuses: list[int] = []
    lock = threading.Lock()
    body = text_plain(compute_categories(flavour="small"))

    def create() -> None:
        client = node.app.test_client()
        barrier.wait()
        response = client.post("/compute/", data=body, headers={
            "Content-Type": "text/plain", "Authorization": node_auth})
        with lock:
            statuses.append(response.status_code)

    from tests.gateway.conftest import basic

    node_auth = basic("alice")["Authorization"]
    threads = [threading.Thread(target=create) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses


def test_concurrent_creates_never_overshoot_capacity(make_node: NodeFactory) -> None:
    node = make_node({"only": "memory://only?cores=10&memory_mib=10240"})

    statuses = _create_concurrently(node, 20)

    assert Counter(statuses) == {201: 10, 503: 10}
    assert used(node) == {"only": (10, 10240)}
    assert node.count_entities() == 10
    node.run_jobs()
    computes = node.driver("only").list_computes()
    assert len(computes) == 10
    assert sum(c.cores for c in computes) == 10
