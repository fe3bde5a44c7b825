"""Whole-gateway tests on a real hypervisor: the OCCI API, the store, the RQ jobs and the
libvirt driver against ``qemu:///system``, with the test appliance as the ``os_tpl`` image.

``cloud`` is a gateway (:func:`tests.gateway.conftest.make_node`, SQLite only) whose one host
``host-a`` is ``qemu:///system``; TCG guests (``virt_type='qemu'``), a storage pool of its own
(unique name, a directory under /var/tmp that QEMU can traverse: pytest's tmp_path is 0700),
networks in ``isolated`` mode. The appliance is copied into that directory and registered as
the image ``nimbo-appliance``: the shared cache file may be rebuilt by another session while
guests of this one still read it. Teardown removes, even after a failure, every domain whose
definition names that directory, the networks of the test, the pool and the directory.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libvirt
import pytest
from sqlalchemy import select

from backends.base import PowerState, domain_name, network_name
from gateway.services.mixins import register_image
from gateway.store.models import EntityRow, Lease
from occi import infrastructure as infra
from tests.appliance import conftest as appliance_fixtures
from tests.appliance.report import BOOT, Report, console_lines, reports
from tests.gateway import conftest as gateway_fixtures
from tests.gateway.conftest import (
    INFRA,
    Node,
    NodeFactory,
    category,
    entity_id,
    path_of,
    text_plain,
)

# fixtures of other directories, shared by name (a conftest sees only its parents' fixtures)
qemu_connection = appliance_fixtures.qemu_connection
appliance_image = appliance_fixtures.appliance_image
make_node = gateway_fixtures.make_node

URI = "qemu:///system"
IMAGE_TERM = "nimbo-appliance"
MIB = 1024**2
WHOLE_LOG = 16 * MIB
"""``console_log`` max_bytes that returns the whole log of one of these guests."""
FLAVOURS = {
    "tiny": {"cores": 1, "memory": 0.125, "share": 1, "title": "Tiny: 1 core, 128 MiB"},
}
NETWORK_MIXIN = category("ipnetwork", f"{INFRA[:-1]}/network#", "mixin")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: PostgreSQL adds nothing to what these tests prove, and costs boots."""
    return f"sqlite:///{tmp_path / 'nimbo.sqlite3'}"


def elapsed(start: float) -> str:
    return f"{time.monotonic() - start:6.1f} s"


def first_boot_report(lines: list[str]) -> Report | None:
    """The first complete report after the first boot line in ``lines``, if any."""
    if BOOT not in lines:
        return None
    found = reports(lines[lines.index(BOOT) :])
    return found[0] if found else None


@dataclass
class Console:
    """A compute's serial console, read through the worker's driver (``console_log``)."""

    cloud: Cloud
    compute_id: str

    def lines(self) -> list[str]:
        text = self.cloud.node.driver().console_log(self.compute_id, max_bytes=WHOLE_LOG)
        return console_lines(text)

    def mark(self) -> int:
        """Where the console is now; the last line may still be incomplete, so it counts as
        not yet seen."""
        return max(len(self.lines()) - 1, 0)

    def wait_for(
        self,
        what: str,
        found: Callable[[list[str]], Report | None],
        mark: int,
        timeout: float,
    ) -> Report:
        """The report ``found`` picks from the lines after ``mark``; fails after ``timeout``
        seconds, or at once when the domain stops running."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines()[mark:]
            if (report := found(lines)) is not None:
                return report
            state = self.cloud.node.driver().compute_info(self.compute_id).state
            tail = "\n".join(lines[-40:])
            assert state is PowerState.RUNNING, f"{state} while waiting for {what}:\n{tail}"
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {timeout:.0f} s; console tail:\n{tail}")
            time.sleep(0.5)

    def boot_report(self, mark: int, timeout: float) -> Report:
        """The first report of the first boot after ``mark``."""
        return self.wait_for("report of a new boot", first_boot_report, mark, timeout)

    def report_where(
        self, what: str, wanted: Callable[[Report], bool], mark: int, timeout: float
    ) -> Report:
        """The first report after ``mark`` that ``wanted`` accepts."""

        def first_wanted(lines: list[str]) -> Report | None:
            return next((r for r in reports(lines) if wanted(r)), None)

        return self.wait_for(what, first_wanted, mark, timeout)


@dataclass
class Cloud:
    """The gateway, its libvirt side and what the test made on it."""

    node: Node
    conn: Any
    workdir: Path
    pool_name: str
    network_ids: set[str] = field(default_factory=set)

    @property
    def pool_dir(self) -> Path:
        return self.workdir / "pool"

    # --- through the API ----------------------------------------------------------------

    def create_network(self, address: str, gateway: str) -> str:
        body = text_plain(
            [category("network", INFRA, "kind"), NETWORK_MIXIN],
            {"occi.network.address": address, "occi.network.gateway": gateway},
        )
        location = self.node.create("network", body)
        self.network_ids.add(entity_id(location))
        return location

    def attributes(self, location: str) -> dict[str, Any]:
        attributes: dict[str, Any] = self.node.get_json(location)["attributes"]
        return attributes

    def state(self, location: str) -> str:
        kind = path_of(location).strip("/").split("/")[0]
        return str(self.attributes(location)[f"occi.{kind}.state"])

    def links(self, compute: str, kind: str) -> list[dict[str, Any]]:
        """The compute's links of ``kind`` (``networkinterface``, ``storagelink``) as the OCCI
        JSON rendering of the compute shows them."""
        return [
            link
            for link in self.node.get_json(compute)["links"]
            if link["kind"] == f"{INFRA}{kind}"
        ]

    def delete(self, location: str) -> None:
        response = self.node.request("DELETE", location)
        assert response.status_code in (200, 204), response.get_data(as_text=True)

    def console(self, compute: str) -> Console:
        return Console(self, entity_id(compute))

    # --- behind the API -----------------------------------------------------------------

    def leases(self) -> dict[str, tuple[str, str]]:
        """link id -> (address, mac) of every lease in the store."""
        with self.node.store.session() as session:
            return {
                lease.link_id: (lease.address, lease.mac)
                for lease in session.scalars(select(Lease))
            }

    def store_ids(self, kind: str) -> set[str]:
        with self.node.store.session() as session:
            return set(session.scalars(select(EntityRow.id).where(EntityRow.kind == kind)))

    def volumes(self) -> list[str]:
        """Names of the volumes in the test's pool (``virsh vol-list``), refreshed first."""
        pool = self.conn.storagePoolLookupByName(self.pool_name)
        pool.refresh(0)
        return sorted(volume.name() for volume in pool.listAllVolumes(0))

    def pool_files(self) -> list[str]:
        return sorted(p.name for p in self.pool_dir.iterdir()) if self.pool_dir.exists() else []

    def domains(self) -> list[str]:
        """Names of the domains (running or not) whose definition names the work directory."""
        found = []
        for domain in self.conn.listAllDomains(0):
            with contextlib.suppress(libvirt.libvirtError):  # gone meanwhile
                if str(self.workdir) in domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE):
                    found.append(domain.name())
        return sorted(found)

    def has_domain(self, compute_id: str) -> bool:
        try:
            self.conn.lookupByName(domain_name(compute_id))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return False
            raise
        return True

    def networks(self) -> list[str]:
        """Names of the test's networks that libvirt still knows."""
        known = {n.name() for n in self.conn.listAllNetworks(0)}
        ids = self.network_ids | self.store_ids(infra.NETWORK.type_id)
        return sorted(known & {network_name(i) for i in ids})

    def network_xml(self, network_id: str) -> str:
        return str(self.conn.networkLookupByName(network_name(network_id)).XMLDesc(0))

    # --- teardown ------------------------------------------------------------------------

    def remove_everything(self) -> None:
        """Domains naming the work directory, the test's networks, the pool: even after a
        failure half way, and whatever state they are in."""
        for name in self.domains():
            with contextlib.suppress(libvirt.libvirtError):
                domain = self.conn.lookupByName(name)
                if domain.isActive():
                    domain.destroy()
                domain.undefine()
        with contextlib.suppress(Exception):  # the store may be what failed
            self.network_ids |= self.store_ids(infra.NETWORK.type_id)
        for network_id in self.network_ids:
            with contextlib.suppress(libvirt.libvirtError):
                network = self.conn.networkLookupByName(network_name(network_id))
                if network.isActive():
                    network.destroy()
                network.undefine()
        with contextlib.suppress(libvirt.libvirtError):
            pool = self.conn.storagePoolLookupByName(self.pool_name)
            if pool.isActive():
                for volume in pool.listAllVolumes(0):
                    with contextlib.suppress(libvirt.libvirtError):
                        volume.delete(0)
                pool.destroy()
            pool.undefine()
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture
def cloud(
    make_node: NodeFactory,
    qemu_connection: Any,
    appliance_image: Path,
) -> Iterator[Cloud]:
    """A gateway on qemu:///system with the appliance registered; everything removed after."""
    tag = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix=f"nimbo-it-{tag}-", dir="/var/tmp"))
    pool_name = f"nimbo-it-{tag}"
    try:
        workdir.chmod(0o755)  # QEMU runs as its own user
        data_dir = workdir / "node"
        data_dir.mkdir(mode=0o755)
        image = workdir / "images" / "nimbo-test-appliance.qcow2"
        image.parent.mkdir(mode=0o755)
        shutil.copyfile(appliance_image, image)
        image.chmod(0o644)
        node = make_node(
            {"host-a": URI},
            image=False,
            data_dir=str(data_dir),
            virt_type="qemu",
            storage_pool=pool_name,
            storage_pool_path=str(workdir / "pool"),
            network_mode="isolated",
            host_cores=64,  # vCPUs of TCG guests, overcommitted on purpose
            flavours=FLAVOURS,
            default_flavour="tiny",
        )
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)  # nothing made in libvirt yet
        raise
    cloud = Cloud(node=node, conn=qemu_connection, workdir=workdir, pool_name=pool_name)
    try:
        register_image(node.store, IMAGE_TERM, str(image), title="nimbo test appliance")
        yield cloud
    finally:
        cloud.remove_everything()
