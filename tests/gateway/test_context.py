"""Contextualization through the gateway: what a create puts on the compute's config drive."""

from __future__ import annotations

import base64
import io
from typing import Any

import pycdlib
import pytest

from backends.base import config_drive_volume_id
from backends.memory import MemoryDriver
from gateway.services.context import context_spec, default_hostname
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

MEMORY_HOST = {"host-a": "memory://context-host?cores=64&memory_mib=65536"}
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE7x0Xkq2yYk0m9Zq3b2N1c1bQ alice@laptop"
SSH_KEY = category("ssh_key", f"{INFRA[:-1]}/credentials#", "mixin")
USER_DATA = category("user_data", f"{INFRA[:-1]}/compute#", "mixin")


def drive_files(node: Node, compute: str) -> dict[str, str]:
    driver = node.driver()
    assert isinstance(driver, MemoryDriver)
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(driver.ex_volume_bytes(config_drive_volume_id(entity_id(compute)))))
    files = {}
    for name in ("meta-data", "user-data", "network-config", "context.sh"):
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, rr_path=f"/{name}")
        files[name] = out.getvalue().decode()
    iso.close()
    return files


def test_the_config_drive_carries_hostname_lease_key_and_user_data(make_node: NodeFactory) -> None:
    node = make_node(MEMORY_HOST)
    network = node.create("network", text_plain(
        [category("network", INFRA, "kind"),
         category("ipnetwork", f"{INFRA[:-1]}/network#", "mixin")],
        {"occi.network.address": "10.20.0.0/24", "occi.network.gateway": "10.20.0.1"}))
    user_data = b"#!/bin/sh\necho hello from user data\n"
    compute = node.create("compute", text_plain(
        [*compute_categories(), SSH_KEY, USER_DATA],
        {"occi.compute.hostname": "worker-7", "occi.credentials.ssh.publickey": KEY,
         "occi.compute.userdata": base64.b64encode(user_data).decode()},
        links=[f'<{path_of(network)}>; rel="{INFRA}network"; '
               f'category="{INFRA}networkinterface"']))
    node.run_jobs()

    files = drive_files(node, compute)

    assert "HOSTNAME='worker-7'" in files["context.sh"]
    assert "ETH0_MAC='02:00:0a:14:00:02'" in files["context.sh"]
    assert "ETH0_IP='10.20.0.2'" in files["context.sh"]
    assert "ETH0_GATEWAY='10.20.0.1'" in files["context.sh"]
    assert f"SSH_PUBLIC_KEY='{KEY}'" in files["context.sh"]
    assert files["user-data"] == user_data.decode()
    assert 'local-hostname: "worker-7"' in files["meta-data"]
    assert "10.20.0.2/24" in files["network-config"]


def test_a_bad_hostname_is_refused_at_create(node: Node) -> None:
    response = node.post_text("/compute/", text_plain(
        compute_categories(), {"occi.compute.hostname": "not_a_host!"}))
    assert response.status_code == 400
    assert "occi.compute.hostname" in response.get_data(as_text=True)


@pytest.mark.parametrize(("title", "expected"), [
    ("web server #1", "web-server-1"), (None, "vm-0123456789ab"), ("***", "vm-0123456789ab"),
])
def test_the_default_hostname_comes_from_the_title(title: str | None, expected: str) -> None:
    assert default_hostname("01234567-89ab-cdef-0000-000000000000", title) == expected


def test_the_context_spec_orders_interfaces_and_decodes_user_data() -> None:
    nics: list[dict[str, Any]] = [
        {"occi.networkinterface.interface": "eth0",
         "occi.networkinterface.mac": "02:00:0A:00:00:05",
         "occi.networkinterface.address": "10.0.0.5/24"},
        {"occi.networkinterface.interface": "eth1",
         "occi.networkinterface.mac": "52:54:00:00:00:01"},
    ]
    spec = context_spec("c1", {"org.openstack.compute.user_data": "aGk=",
                               "org.openstack.credentials.publickey.data": KEY}, nics)
    assert [(i.name, i.mac, i.address) for i in spec.interfaces] == [
        ("eth0", "02:00:0a:00:00:05", "10.0.0.5/24"), ("eth1", "52:54:00:00:00:01", None)]
    assert spec.user_data == b"hi" and spec.ssh_keys == (KEY,)
    raw = context_spec("c1", {"occi.compute.userdata": "not base64 !"}, [])
    assert raw.user_data == b"not base64 !"
