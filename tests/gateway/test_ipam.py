"""IP address management: leases per network, MACs derived from them, released on delete."""

from __future__ import annotations

import ipaddress
import threading
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from gateway.services.ipam import address_of_mac, mac_for
from gateway.store.models import Lease
from tests.gateway.conftest import (
    INFRA,
    Node,
    NodeFactory,
    basic,
    category,
    compute_categories,
    path_of,
    text_plain,
)

MEMORY_HOST = {"host-a": "memory://ipam-host?cores=256&memory_mib=262144"}
NETIF_MIXIN = f"{INFRA[:-1]}/networkinterface#"


def ip_network(node: Node, address: str, **attrs: Any) -> str:
    body = text_plain(
        [category("network", INFRA, "kind"),
         category("ipnetwork", f"{INFRA[:-1]}/network#", "mixin")],
        {"occi.network.address": address, **attrs},
    )
    return node.create("network", body)


def nic_link(network: str, **attrs: Any) -> str:
    extra = "".join(f'; {k}="{v}"' for k, v in attrs.items())
    categories = f"{INFRA}networkinterface"
    if attrs:
        categories += f" {NETIF_MIXIN}ipnetworkinterface"
    return f'<{path_of(network)}>; rel="{INFRA}network"; category="{categories}"{extra}'


def compute_with_nic(node: Node, network: str, **attrs: Any) -> str:
    return node.create("compute", text_plain(compute_categories(), links=[nic_link(network,
                                                                                   **attrs)]))


def interface(node: Node, compute: str) -> dict[str, Any]:
    document = node.get_json(compute)
    (link,) = [link for link in document["links"] if link["kind"].endswith("#networkinterface")]
    return link


def leases(node: Node) -> int:
    with node.store.session() as session:
        return int(session.scalar(select(func.count()).select_from(Lease)) or 0)


@pytest.fixture
def ipnode(make_node: NodeFactory) -> Node:
    return make_node(MEMORY_HOST)


def test_the_mac_encodes_the_address_both_ways() -> None:
    address = ipaddress.IPv4Address("10.1.0.23")
    assert mac_for(address) == "02:00:0a:01:00:17"
    assert address_of_mac("02:00:0A:01:00:17") == address
    assert address_of_mac("52:54:00:01:02:03") is None


def test_a_dynamic_interface_gets_the_first_free_address_and_its_mac(ipnode: Node) -> None:
    network = ip_network(ipnode, "10.1.0.0/24", **{"occi.network.gateway": "10.1.0.1"})
    first = interface(ipnode, compute_with_nic(ipnode, network))
    second = interface(ipnode, compute_with_nic(ipnode, network))

    assert first["attributes"]["occi.networkinterface.address"] == "10.1.0.2/24"
    assert first["attributes"]["occi.networkinterface.gateway"] == "10.1.0.1"
    assert first["attributes"]["occi.networkinterface.allocation"] == "dynamic"
    assert first["attributes"]["occi.networkinterface.mac"] == "02:00:0a:01:00:02"
    assert f"{NETIF_MIXIN}ipnetworkinterface" in first["mixins"]
    assert second["attributes"]["occi.networkinterface.address"] == "10.1.0.3/24"


def test_a_static_address_is_leased_once(ipnode: Node) -> None:
    network = ip_network(ipnode, "10.2.0.0/24")
    nic = interface(ipnode, compute_with_nic(
        ipnode, network, **{"occi.networkinterface.address": "10.2.0.50"}))
    assert nic["attributes"]["occi.networkinterface.address"] == "10.2.0.50/24"
    assert nic["attributes"]["occi.networkinterface.allocation"] == "static"
    assert nic["attributes"]["occi.networkinterface.mac"] == "02:00:0a:02:00:32"

    body = text_plain(compute_categories(), links=[
        nic_link(network, **{"occi.networkinterface.address": "10.2.0.50"})])
    again = ipnode.post_text("/compute/", body)
    assert again.status_code == 409
    assert "10.2.0.50" in again.get_data(as_text=True)
    assert leases(ipnode) == 1  # the refused create left no lease and no compute behind


@pytest.mark.parametrize(("address", "status", "words"), [
    ("10.3.0.300", 400, "occi.networkinterface.address"),
    ("192.168.7.5", 400, "outside"),
    ("10.3.0.0", 400, "network address"),
    ("10.3.0.255", 400, "broadcast"),
    ("10.3.0.1", 409, "gateway"),
    ("10.3.0.9/16", 400, "/24"),
])
def test_an_impossible_static_address_is_refused(ipnode: Node, address: str, status: int,
                                                  words: str) -> None:
    network = ip_network(ipnode, "10.3.0.0/24", **{"occi.network.gateway": "10.3.0.1"})
    body = text_plain(compute_categories(), links=[
        nic_link(network, **{"occi.networkinterface.address": address})])
    response = ipnode.post_text("/compute/", body)
    assert response.status_code == status, response.get_data(as_text=True)
    assert words in response.get_data(as_text=True)
    assert leases(ipnode) == 0


def test_a_static_only_network_wants_the_address_from_the_client(ipnode: Node) -> None:
    network = ip_network(ipnode, "10.4.0.0/24", **{"occi.network.allocation": "static"})
    response = ipnode.post_text(
        "/compute/", text_plain(compute_categories(), links=[nic_link(network)]))
    assert response.status_code == 400
    assert "static addresses only" in response.get_data(as_text=True)


def test_a_full_network_says_so(ipnode: Node) -> None:
    network = ip_network(ipnode, "10.5.0.0/30")  # two host addresses
    compute_with_nic(ipnode, network)
    compute_with_nic(ipnode, network)
    response = ipnode.post_text(
        "/compute/", text_plain(compute_categories(), links=[nic_link(network)]))
    assert response.status_code == 409
    assert "no free address" in response.get_data(as_text=True)


def test_deleting_the_compute_releases_its_lease(ipnode: Node) -> None:
    network = ip_network(ipnode, "10.6.0.0/24")
    compute = compute_with_nic(ipnode, network)
    ipnode.run_jobs()
    assert leases(ipnode) == 1
    assert ipnode.request("DELETE", compute).status_code in (200, 204)
    ipnode.run_jobs()
    assert leases(ipnode) == 0
    again = interface(ipnode, compute_with_nic(ipnode, network))
    assert again["attributes"]["occi.networkinterface.address"] == "10.6.0.1/24"


def test_a_leased_address_and_a_used_range_cannot_be_changed(ipnode: Node) -> None:
    network = ip_network(ipnode, "10.7.0.0/24")
    compute = compute_with_nic(ipnode, network)
    nic = interface(ipnode, compute)
    location = f"/networkinterface/{nic['id'].removeprefix('urn:uuid:')}"
    changed = ipnode.post_text(location, text_plain(
        [category("networkinterface", INFRA, "kind"),
         category("ipnetworkinterface", NETIF_MIXIN, "mixin")],
        {"occi.networkinterface.address": "10.7.0.99/24"}))
    assert changed.status_code == 409, changed.get_data(as_text=True)
    moved = ipnode.post_text(path_of(network), text_plain(
        [category("network", INFRA, "kind")], {"occi.network.address": "10.8.0.0/24"}))
    assert moved.status_code == 409, moved.get_data(as_text=True)
    assert "leased addresses" in moved.get_data(as_text=True)


def test_addresses_are_unique_per_network_by_database_constraint(ipnode: Node) -> None:
    with pytest.raises(IntegrityError), ipnode.store.session(write=True) as session:
        session.add(Lease(network_id="n1", address="10.0.0.2", link_id="a", mac="02:00:00:02"))
        session.flush()
        session.add(Lease(network_id="n1", address="10.0.0.2", link_id="b", mac="02:00:00:09"))


def test_interfaces_created_at_once_get_distinct_addresses(ipnode: Node) -> None:
    network = ip_network(ipnode, "10.9.0.0/24")
    computes = [ipnode.create("compute", text_plain(compute_categories())) for _ in range(12)]
    statuses: list[int] = []
    barrier = threading.Barrier(len(computes))

    def link(compute: str) -> None:
        body = text_plain(
            [category("networkinterface", INFRA, "kind")],
            {"occi.core.source": path_of(compute), "occi.core.target": path_of(network)},
        )
        client = ipnode.app.test_client()
        barrier.wait()
        response = client.post("/networkinterface/", data=body, headers={
            **_auth(), "Content-Type": "text/plain"})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=link, args=(c,)) for c in computes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [201] * len(computes)
    with ipnode.store.session() as session:
        addresses = list(session.scalars(select(Lease.address)))
    assert len(addresses) == len(set(addresses)) == len(computes)


def _auth() -> dict[str, str]:
    return basic("root")
