"""ex_portmap through the gateway: the worker forwards an interface's public ports with
nftables in the host's public namespace (here a namespace the test creates), and removes them
with the interface or the compute."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.jobs import port_map_table
from tests.gateway.conftest import (
    INFRA,
    Node,
    NodeFactory,
    category,
    compute_categories,
    entity_id,
    path_of,
    text_plain,
)
from tests.netns import netns_unavailable, run

pytestmark = [pytest.mark.netns, pytest.mark.redis]

MEMORY_HOST = {"host-a": "memory://portmap-host?cores=64&memory_mib=65536"}
PORTMAP = "http://schemas.nimbostratus.org/occi/infrastructure/networkinterface#ex_portmap"


@pytest.fixture
def namespace() -> Iterator[str]:
    reason = netns_unavailable()
    if reason:
        pytest.skip(f"network namespace tests need root, ip netns and nft: {reason}")
    name = f"nimbo-pm-{uuid.uuid4().hex[:8]}"
    assert run("ip", "netns", "add", name).returncode == 0
    try:
        yield name
    finally:
        run("ip", "netns", "delete", name)


def table(namespace: str, link_id: str) -> str | None:
    listed = run("ip", "netns", "exec", namespace, "nft", "list", "table", "ip",
                  f"nimbo_{port_map_table(link_id)}")
    return listed.stdout if listed.returncode == 0 else None


def mapped_nic(network: str, rules: str) -> str:
    return (f'<{path_of(network)}>; rel="{INFRA}network"; '
            f'category="{INFRA}networkinterface {PORTMAP}"; org.nimbostratus.portmap="{rules}"')


def nic_of(node: Node, compute: str) -> str:
    document: dict[str, Any] = node.get_json(compute)
    (link,) = [link for link in document["links"] if link["kind"].endswith("#networkinterface")]
    return str(link["id"]).removeprefix("urn:uuid:")


def ip_network(node: Node, address: str) -> str:
    return node.create("network", text_plain(
        [category("network", INFRA, "kind"),
         category("ipnetwork", f"{INFRA[:-1]}/network#", "mixin")],
        {"occi.network.address": address}))


def test_public_ports_follow_the_interface(make_node: NodeFactory, namespace: str) -> None:
    node = make_node(MEMORY_HOST, portmap_netns=namespace)
    network = ip_network(node, "10.30.0.0/24")
    compute = node.create("compute", text_plain(
        compute_categories(), links=[mapped_nic(network, "tcp:2222:22, udp:5353:53")]))
    node.run_jobs()
    link = nic_of(node, compute)

    rules = table(namespace, link)
    assert rules is not None
    assert "tcp dport 2222" in rules and "dnat to 10.30.0.1:22" in rules
    assert "udp dport 5353" in rules and "dnat to 10.30.0.1:53" in rules

    taken = node.post_text("/compute/", text_plain(
        compute_categories(), links=[mapped_nic(network, "tcp:2222:80")]))
    assert taken.status_code == 409
    assert "2222" in taken.get_data(as_text=True)

    assert node.request("DELETE", compute).status_code in (200, 204)
    node.run_jobs()
    assert table(namespace, link) is None


def test_a_standalone_interface_maps_and_unmaps(make_node: NodeFactory, namespace: str) -> None:
    node = make_node(MEMORY_HOST, portmap_netns=namespace)
    network = ip_network(node, "10.31.0.0/24")
    compute = node.create("compute", text_plain(compute_categories()))
    node.run_jobs()
    nic = node.create("networkinterface", text_plain(
        [category("networkinterface", INFRA, "kind"),
         category("ex_portmap", PORTMAP.split("#")[0] + "#", "mixin")],
        {"occi.core.source": path_of(compute), "occi.core.target": path_of(network),
         "org.nimbostratus.portmap": "tcp:8080:80"}))
    node.run_jobs()
    assert "dnat to 10.31.0.1:80" in (table(namespace, entity_id(nic)) or "")

    assert node.request("DELETE", nic).status_code in (200, 204)
    node.run_jobs()
    assert table(namespace, entity_id(nic)) is None


@pytest.mark.parametrize(("rules", "status", "words"), [
    ("tcp:70000:22", 400, "port"),
    ("icmp:22:22", 400, "org.nimbostratus.portmap"),
    ("tcp:22:22 tcp:22:80", 400, "twice"),
])
def test_bad_rules_are_refused(node: Node, rules: str, status: int, words: str) -> None:
    network = ip_network(node, "10.32.0.0/24")
    response = node.post_text("/compute/", text_plain(
        compute_categories(), links=[mapped_nic(network, rules)]))
    assert response.status_code == status, response.get_data(as_text=True)
    assert words in response.get_data(as_text=True)


def test_a_mapping_needs_an_address(node: Node) -> None:
    network = node.create("network", text_plain([category("network", INFRA, "kind")]))
    response = node.post_text("/compute/", text_plain(
        compute_categories(), links=[mapped_nic(network, "tcp:2222:22")]))
    assert response.status_code == 400
    assert "ipnetwork" in response.get_data(as_text=True)
