"""VLANs on Linux bridges (backends.libvirt.vlan) as far as this machine allows: the kernel here
has no 802.1Q (CONFIG_VLAN_8021Q), so the traffic test in test_libvirt_qemu.py skips. What runs:
a VLAN network's libvirt definition, the refusals, and the host links ``ip`` really makes and
checks (in the root namespace, never up, so nothing is sent)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

libvirt = pytest.importorskip("libvirt")

from backends.base import NetworkSpec  # noqa: E402
from backends.libvirt import vlan  # noqa: E402
from backends.libvirt.driver import LibvirtDriver  # noqa: E402
from gateway.errors import BackendConflict, BackendError  # noqa: E402
from tests.backends.conftest import host_file_uri  # noqa: E402
from tests.netns import run  # noqa: E402

pytestmark = pytest.mark.libvirt


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[LibvirtDriver]:
    driver = LibvirtDriver(host_file_uri("host-a"), console_dir=str(tmp_path), vlan_uplink="eth9")
    yield driver
    driver.close()


def test_a_vlan_network_is_bridged_onto_its_vlans_bridge(driver: LibvirtDriver) -> None:
    info = driver.ensure_network(NetworkSpec(id="n42", vlan=42, address="192.0.2.0/24"))

    assert info.bridge == "nbv42"
    root = ElementTree.fromstring(driver._require_network("n42").XMLDesc(0))
    forward = root.find("forward")
    assert forward is not None and forward.get("mode") == "bridge"
    assert root.find("ip") is None and root.find("vlan") is None  # the bridge is on the tag
    plain = driver.ensure_network(NetworkSpec(id="plain", address="192.0.2.0/24"))
    assert plain.bridge != "nbv42"  # a network without a VLAN stays as configured


def test_a_vlan_bridge_is_made_on_the_host_itself() -> None:
    driver = LibvirtDriver("qemu+ssh://root@hv7.example.org/system", vlan_uplink="eth0")
    with pytest.raises(BackendError, match="run the worker there with a local URI"):
        driver.ensure_network(NetworkSpec(id="n", vlan=42))  # refused before connecting


@pytest.mark.parametrize("number", [0, 4095])
def test_vlan_ids_are_802_1q_ids(number: int) -> None:
    with pytest.raises(BackendError, match=r"802\.1Q ids are 1 to 4094"):
        vlan.ensure_bridge("lo", number)


def test_a_missing_uplink_is_named() -> None:
    with pytest.raises(BackendError, match="VLAN uplink nimbo-no-such0: no such interface"):
        vlan.ensure_bridge("nimbo-no-such0", 42)


def test_a_link_of_the_bridges_name_that_is_no_bridge_is_left_alone() -> None:
    number = 3900 + uuid.uuid4().int % 90
    name = vlan.bridge_name(number)
    made = run("ip", "link", "add", name, "type", "veth", "peer", "name", f"nvq{number}")
    if made.returncode != 0:
        pytest.skip(f"cannot make a veth pair here: {made.stderr.strip()}")
    try:
        with pytest.raises(BackendConflict, match=f"{name} exists and is not a bridge"):
            vlan.ensure_bridge("lo", number)
        assert run("ip", "link", "show", "dev", name).returncode == 0  # untouched
    finally:
        run("ip", "link", "del", "dev", name)


@pytest.mark.parametrize(("name", "number"), [("nbv42", 42), ("nbv4094", 4094), ("nbv0", None),
                                              ("nbr42", None), ("nbvx", None)])
def test_vlan_of_bridge(name: str, number: int | None) -> None:
    assert vlan.vlan_of_bridge(name) == number


def test_the_settings_reach_the_driver(tmp_path: Path) -> None:
    from gateway.config import Config
    from gateway.runtime import driver_options

    config = Config({"data_dir": str(tmp_path), "network_virtual_switch": "openvswitch",
                     "network_bridge_device": "br-site", "network_vlan_uplink": "eth9"})
    options = {**driver_options(config), "console_dir": str(tmp_path)}
    driver = LibvirtDriver(host_file_uri("host-a"), **options)  # type: ignore[arg-type]
    try:
        assert (driver.virtual_switch, driver.vlan_uplink) == ("openvswitch", "eth9")
        driver.ensure_network(NetworkSpec(id="ovs", vlan=42, mode="bridge"))
        root = ElementTree.fromstring(driver._require_network("ovs").XMLDesc(0))
        virtualport, tag = root.find("virtualport"), root.find("vlan/tag")
        assert virtualport is not None and virtualport.get("type") == "openvswitch"
        assert tag is not None and tag.get("id") == "42"  # Open vSwitch tags: no VLAN bridge
        bridge = root.find("bridge")
        assert bridge is not None and bridge.get("name") == "br-site"
    finally:
        driver.close()


def test_an_unknown_virtual_switch_is_refused() -> None:
    from gateway.config import Config
    from gateway.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="network_virtual_switch must be"):
        Config({"network_virtual_switch": "vde"})
