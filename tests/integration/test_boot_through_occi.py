"""Issue 3, end to end: OCCI requests in, guests that really boot on ``qemu:///system`` out.

Everything goes through the OCCI API (text/plain creates, actions and deletes through Flask's
test client), the store and RQ jobs run by an in-process worker; the appliance is the
``os_tpl`` image. What the guest got is read from its own report on the serial console
(``console_log``, see appliances/init; once also through the API, ``GET /compute/<id>/console``):
hostname, every NIC with its MAC and address, every disk with its size, digests of the user
data and the SSH key. Guests are TCG (``virt_type
'qemu'``), on isolated networks; the tests never send a packet to them, they read consoles.
The host holds no address on such a network's bridge (isolated: no ``<ip>``, no dnsmasq, see
:func:`backends.libvirt.xml.network_xml`), and the tests check that the root namespace sends
nothing onto the bridge while the guests run.

Timings are printed (``pytest -s``).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

import pytest

from backends.base import PowerState, config_drive_volume_id
from gateway.jobs import root_volume_id
from gateway.services.context import default_hostname
from gateway.services.entities import CONSOLE_MAX_BYTES
from occi.infrastructure import CONSOLE_ATTRIBUTE
from tests.appliance.report import BEGIN, Report, console_lines
from tests.gateway.conftest import (
    INFRA,
    basic,
    category,
    compute_categories,
    entity_id,
    path_of,
    text_plain,
)
from tests.integration.conftest import (
    IMAGE_TERM,
    MIB,
    WHOLE_LOG,
    Cloud,
    elapsed,
    first_boot_report,
)

pytestmark = [pytest.mark.libvirt, pytest.mark.slow, pytest.mark.appliance]

BOOT_TIMEOUT = 300.0  # one TCG boot on a shared two-core machine
GRACEFUL_TIMEOUT = 60.0  # the driver's graceful_timeout: slower means it powered off instead
SWARM = 20
SWARM_TIMEOUT = 900.0  # SWARM TCG guests booting at once on two shared cores
SWARM_MEMORY_GIB = 0.09375  # 96 MiB each: 80 boots, 64 does not (the initramfs is unpacked)

HOSTNAME = "boot-proof-1"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9jY2kgYm9vdCBwcm9vZg boot@proof"
USER_DATA = b'#!/bin/sh\necho "NIMBO-USERDATA-RAN $(hostname)"\n'
SSH_KEY_MIXIN = category("ssh_key", f"{INFRA[:-1]}/credentials#", "mixin")
USER_DATA_MIXIN = category("user_data", f"{INFRA[:-1]}/compute#", "mixin")
DISK_GIB, DISK_BYTES = 0.0625, 64 * MIB
HOT_GIB, HOT_BYTES = 0.03125, 32 * MIB


def nic_link(network: str) -> str:
    return f'<{path_of(network)}>; rel="{INFRA}network"; category="{INFRA}networkinterface"'


def disk_link(storage: str) -> str:
    return f'<{path_of(storage)}>; rel="{INFRA}storage"; category="{INFRA}storagelink"'


def lease_of(nic: dict[str, Any]) -> tuple[str, str]:
    """(mac, address/prefix) of a networkinterface as the OCCI rendering shows it."""
    attributes = nic["attributes"]
    return attributes["occi.networkinterface.mac"], attributes["occi.networkinterface.address"]


def check_isolated(cloud: Cloud, network: str) -> str:
    """The network's libvirt definition keeps the guests to themselves: no forward, no host
    address (so no dnsmasq, no DHCP), and the host's bridge really has no IPv4 address.
    Returns its bridge."""
    root = ElementTree.fromstring(cloud.network_xml(entity_id(network)))
    text = ElementTree.tostring(root, encoding="unicode")
    assert root.find("forward") is None and root.find("ip") is None, text
    bridge = root.find("bridge")
    assert bridge is not None
    name = str(bridge.get("name"))
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", name],
                           capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "", shown.stdout
    print(f"\n[network] bridge {name}: no <forward>, no host address")
    return name


def host_sent(bridge: str) -> int:
    """Packets the root namespace has sent onto ``bridge`` (its own port, not forwarded ones)."""
    with open(f"/sys/class/net/{bridge}/statistics/tx_packets") as counter:
        return int(counter.read())


# --- one guest, step by step ------------------------------------------------------------


def boot_one_guest(cloud: Cloud, network: str, disk: str) -> tuple[str, Report]:
    """Step 1: create, provision, boot; everything the report shows matches the request."""
    node = cloud.node
    body = text_plain(
        [*compute_categories(image=IMAGE_TERM, flavour="tiny"), SSH_KEY_MIXIN, USER_DATA_MIXIN],
        {
            "occi.compute.hostname": HOSTNAME,
            "occi.credentials.ssh.publickey": SSH_KEY,
            "occi.compute.userdata": base64.b64encode(USER_DATA).decode(),
        },
        links=[nic_link(network), disk_link(disk)],
    )
    start = time.monotonic()
    compute = node.create("compute", body)
    node.run_jobs()
    print(f"\n[one guest] create + provision job: {elapsed(start)}")
    assert cloud.state(compute) == "active", cloud.attributes(compute)
    (nic,) = cloud.links(compute, "networkinterface")
    (storagelink,) = cloud.links(compute, "storagelink")
    assert nic["attributes"]["occi.networkinterface.state"] == "active"
    assert storagelink["attributes"]["occi.storagelink.state"] == "active"
    assert storagelink["attributes"]["occi.storagelink.deviceid"] == "vdb"
    mac, address = lease_of(nic)
    assert address == "10.77.0.2/24"  # the first free address: .1 is the gateway
    assert cloud.leases() == {nic["id"].removeprefix("urn:uuid:"): (address.split("/")[0], mac)}

    report = cloud.console(compute).boot_report(0, BOOT_TIMEOUT)
    print(f"[one guest] create to first report: {elapsed(start)}")

    driver = node.driver()
    compute_id = entity_id(compute)
    assert report.hostname == HOSTNAME
    assert report.ifaces == {"eth0": (mac, address)}
    assert report.disks == {
        "vda": driver.volume_info(root_volume_id(compute_id)).capacity_bytes,
        "vdb": DISK_BYTES,
        "sr0": driver.volume_info(config_drive_volume_id(compute_id)).capacity_bytes,
    }
    assert report.userdata_sha256 == hashlib.sha256(USER_DATA).hexdigest()
    assert report.sshkey_sha256 == hashlib.sha256((SSH_KEY + "\n").encode()).hexdigest()
    lines = cloud.console(compute).lines()
    assert f"NIMBO-USERDATA-RAN {HOSTNAME}" in lines
    assert [line for line in lines if "NIMBO-ERROR" in line] == []

    # the same console through the API, where the compute advertises it: read by the worker
    console = cloud.attributes(compute)[CONSOLE_ATTRIBUTE]
    response = node.while_working(lambda: node.get(f"{console}?bytes={CONSOLE_MAX_BYTES}"))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    through_api = console_lines(response.get_data(as_text=True))
    assert {BEGIN, f"hostname={HOSTNAME}", f"NIMBO-USERDATA-RAN {HOSTNAME}"} <= set(through_api)
    return compute, report


def stop_and_start(cloud: Cloud, compute: str, first: Report) -> None:
    """Step 2: a graceful stop reaches the guest's ACPI handler; a start boots it again, with
    the same context."""
    node, console = cloud.node, cloud.console(compute)
    mark = console.mark()
    start = time.monotonic()
    response = node.action(compute, "stop", attributes={"method": "graceful"})
    assert response.status_code == 200, response.get_data(as_text=True)
    node.run_jobs()
    stopped_in = time.monotonic() - start
    print(f"[one guest] graceful stop: {elapsed(start)}")
    assert cloud.state(compute) == "inactive", cloud.attributes(compute)
    assert node.driver().compute_info(entity_id(compute)).state is PowerState.STOPPED
    assert "NIMBO-POWEROFF" in console.lines()[mark:]
    assert stopped_in < GRACEFUL_TIMEOUT  # the guest powered off, not the fallback

    mark = console.mark()
    start = time.monotonic()
    response = node.action(compute, "start")
    assert response.status_code == 200, response.get_data(as_text=True)
    node.run_jobs()
    assert cloud.state(compute) == "active", cloud.attributes(compute)
    again = console.boot_report(mark, BOOT_TIMEOUT)
    print(f"[one guest] start to the new report: {elapsed(start)}")
    assert again == first


def hot_plug(cloud: Cloud, compute: str, before: Report) -> str:
    """Step 3: a standalone storagelink to a running compute shows up in the guest, and goes
    away again when the link is deleted. Returns the second storage."""
    node, console = cloud.node, cloud.console(compute)
    storage = node.create_storage(HOT_GIB)
    node.run_jobs()
    assert cloud.state(storage) == "online"

    mark = console.mark()
    start = time.monotonic()
    link = node.create(
        "storagelink",
        text_plain(
            [category("storagelink", INFRA, "kind")],
            {"occi.core.source": path_of(compute), "occi.core.target": path_of(storage)},
        ),
    )
    node.run_jobs()
    attributes = cloud.attributes(link)
    assert attributes["occi.storagelink.state"] == "active", attributes
    device = attributes["occi.storagelink.deviceid"]
    assert device == "vdc"
    plugged = console.report_where(
        f"a report with {device}", lambda r: device in r.disks, mark, BOOT_TIMEOUT
    )
    print(f"[one guest] hot-plug to the report showing it: {elapsed(start)}")
    assert plugged.disks == {**before.disks, device: HOT_BYTES}
    assert plugged.ifaces == before.ifaces

    mark = console.mark()
    start = time.monotonic()
    cloud.delete(link)
    node.run_jobs()
    unplugged = console.report_where(
        f"a report without {device}", lambda r: device not in r.disks, mark, BOOT_TIMEOUT
    )
    print(f"[one guest] unplug to the report without it: {elapsed(start)}")
    assert unplugged == before
    assert len(cloud.links(compute, "storagelink")) == 1
    return storage


def delete_all(cloud: Cloud, compute: str, storages: list[str], network: str) -> None:
    """Step 4: deleting the compute leaves nothing of it in libvirt, the pool or the store;
    then the storages and the network go, and nothing of the test is left in libvirt."""
    node = cloud.node
    compute_id = entity_id(compute)
    start = time.monotonic()
    cloud.delete(compute)
    node.run_jobs()
    print(f"[one guest] delete compute: {elapsed(start)}")
    assert node.get(compute).status_code == 404
    assert not cloud.has_domain(compute_id)
    assert [v for v in cloud.volumes() if compute_id in v] == []
    assert [f for f in cloud.pool_files() if compute_id in f] == []
    assert cloud.leases() == {}
    assert cloud.store_ids(f"{INFRA}networkinterface") == set()

    for location in [*storages, network]:
        cloud.delete(location)
    node.run_jobs()
    assert cloud.volumes() == []
    assert cloud.pool_files() == []
    assert cloud.networks() == []
    assert cloud.domains() == []
    assert node.count_entities() == 0


@pytest.mark.timeout(1800)
def test_one_guest_boots_stops_starts_hot_plugs_and_is_deleted(cloud: Cloud) -> None:
    node = cloud.node
    network = cloud.create_network("10.77.0.0/24", "10.77.0.1")
    disk = node.create_storage(DISK_GIB)
    node.run_jobs()
    assert cloud.state(network) == "active"
    assert cloud.state(disk) == "online"
    bridge = check_isolated(cloud, network)
    sent_before = host_sent(bridge)

    compute, first = boot_one_guest(cloud, network, disk)
    stop_and_start(cloud, compute, first)
    storage = hot_plug(cloud, compute, first)

    assert host_sent(bridge) == sent_before, "the host sent packets onto the guests' bridge"
    delete_all(cloud, compute, [disk, storage], network)


# --- many guests at once ----------------------------------------------------------------


@dataclass
class Boot:
    """When the watcher first saw a guest's domain running, its first report, and why it
    gave up on the guest (``failure``: what went wrong and the tail of its console)."""

    running_at: float | None = None
    reported_at: float | None = None
    report: Report | None = None
    failure: str | None = None


PANIC = "Kernel panic"
CONSOLE_TAIL_LINES = 25


class ConsoleWatcher(threading.Thread):
    """Reads the consoles of ``computes`` once a second, while the worker (which has to run in
    the main thread: RQ installs signal handlers) is still provisioning the others.

    A guest is given up on as soon as its console shows a kernel panic, its domain stops
    running, or it has run ``BOOT_TIMEOUT`` seconds without a report; the watcher then stops
    and the test fails with that guest's console, instead of waiting out the swarm's time."""

    def __init__(self, cloud: Cloud, computes: list[str], origin: float) -> None:
        super().__init__(daemon=True)
        self.cloud, self.origin = cloud, origin
        self.boots = {compute: Boot() for compute in computes}
        self.stop = threading.Event()
        self.failure: BaseException | None = None

    def pending(self) -> bool:
        return any(b.report is None and b.failure is None for b in self.boots.values())

    def run(self) -> None:
        driver = self.cloud.node.driver()
        try:
            while not self.stop.is_set() and self.pending():
                for compute, boot in self.boots.items():
                    if boot.report is None and boot.failure is None:
                        self.look(driver, compute, boot)
                        if boot.failure is not None:
                            return  # the test fails on it: no need to wait for the others
                self.stop.wait(1.0)
        except BaseException as exc:  # shown by the test, not lost in this thread
            self.failure = exc

    def look(self, driver: Any, compute: str, boot: Boot) -> None:
        compute_id = entity_id(compute)
        state = driver.compute_info(compute_id).state
        if state is not PowerState.RUNNING and boot.running_at is None:
            return  # not started yet
        now = time.monotonic() - self.origin
        boot.running_at = boot.running_at if boot.running_at is not None else now
        lines = console_lines(driver.console_log(compute_id, max_bytes=WHOLE_LOG))
        if (report := first_boot_report(lines)) is not None:
            boot.report, boot.reported_at = report, now
            return
        if any(PANIC in line for line in lines):
            reason = "its kernel panicked"
        elif state is not PowerState.RUNNING:
            reason = f"its domain went {state.name.lower()} before reporting"
        elif now - boot.running_at > BOOT_TIMEOUT:
            reason = f"no report {BOOT_TIMEOUT:.0f} s after its domain started"
        else:
            return
        tail = "\n".join(f"    | {line}" for line in lines[-CONSOLE_TAIL_LINES:])
        boot.failure = f"{compute}: {reason} (at {now:.0f} s); its console ends:\n{tail}"


def figures(values: list[float]) -> str:
    return (
        f"min {min(values):.1f} s, median {statistics.median(values):.1f} s, "
        f"max {max(values):.1f} s"
    )


@pytest.mark.timeout(2400)
def test_twenty_guests_created_at_once_each_boot_with_their_own_lease(cloud: Cloud) -> None:
    node = cloud.node
    network = cloud.create_network("10.76.0.0/24", "10.76.0.1")
    node.run_jobs()
    assert cloud.state(network) == "active"
    bridge = check_isolated(cloud, network)
    sent_before = host_sent(bridge)

    body = text_plain(
        compute_categories(image=IMAGE_TERM),
        {"occi.compute.cores": 1, "occi.compute.memory": SWARM_MEMORY_GIB},
        links=[nic_link(network)],
    )
    barrier = threading.Barrier(SWARM)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def create() -> None:
        client = node.app.test_client()  # one client per thread
        barrier.wait()
        response = client.post(
            "/compute/", data=body, headers={**basic("root"), "Content-Type": "text/plain"}
        )
        with lock:
            results.append((response.status_code, response.headers.get("Location", "")))

    threads = [threading.Thread(target=create) for _ in range(SWARM)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"\n[{SWARM} guests] {SWARM} concurrent creates: {elapsed(start)}")
    assert [status for status, _ in results] == [201] * SWARM, results
    computes = [location for _, location in results]

    leases = cloud.leases()
    addresses = {address for address, _mac in leases.values()}
    assert len(leases) == len(addresses) == SWARM
    assert {ipaddress.ip_address(a) for a in addresses} <= set(
        ipaddress.ip_network("10.76.0.0/24").hosts()
    )
    expected: dict[str, tuple[str, str]] = {}
    for compute in computes:
        (nic,) = cloud.links(compute, "networkinterface")
        address, mac = leases[nic["id"].removeprefix("urn:uuid:")]
        assert lease_of(nic) == (mac, f"{address}/24")
        expected[compute] = (mac, f"{address}/24")

    start = time.monotonic()
    watcher = ConsoleWatcher(cloud, computes, start)
    watcher.start()
    try:
        node.run_jobs()
        provisioned = time.monotonic() - start
        print(f"[{SWARM} guests] provision jobs (one in-process worker): {elapsed(start)}")
        assert [cloud.state(c) for c in computes] == ["active"] * SWARM
        watcher.join(timeout=max(SWARM_TIMEOUT - provisioned, 0.0))
    finally:
        watcher.stop.set()
        watcher.join()
    if watcher.failure is not None:
        raise watcher.failure
    boots = watcher.boots
    failed = [
        boot.failure or f"{c}: no report in {SWARM_TIMEOUT:.0f} s"
        for c, boot in boots.items()
        if boot.report is None
    ]
    assert failed == [], f"{len(failed)} of {SWARM} guests gave no report:\n" + "\n".join(failed)
    reported_at = [boot.reported_at or 0.0 for boot in boots.values()]
    booted_in = [(b.reported_at or 0.0) - (b.running_at or 0.0) for b in boots.values()]
    print(f"[{SWARM} guests] provision start to each report: {figures(reported_at)}")
    print(f"[{SWARM} guests] domain running to its report: {figures(booted_in)}")

    for compute, boot in boots.items():
        assert boot.report is not None
        assert boot.report.ifaces == {"eth0": expected[compute]}, compute
        assert boot.report.hostname == default_hostname(entity_id(compute), None)
        errors = [line for line in cloud.console(compute).lines() if "NIMBO-ERROR" in line]
        assert errors == [], compute
    assert host_sent(bridge) == sent_before, "the host sent packets onto the guests' bridge"

    start = time.monotonic()
    for compute in computes:
        cloud.delete(compute)
    node.run_jobs()
    print(f"[{SWARM} guests] delete all: {elapsed(start)}")
    assert cloud.domains() == []
    assert cloud.leases() == {}
    cloud.delete(network)
    node.run_jobs()
    assert cloud.volumes() == []
    assert cloud.pool_files() == []
    assert cloud.networks() == []
