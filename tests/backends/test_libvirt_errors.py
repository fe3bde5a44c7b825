"""Real libvirt errors come out as our exceptions, with libvirt's error chained."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

libvirt = pytest.importorskip("libvirt")

from backends.libvirt.driver import LibvirtDriver  # noqa: E402
from backends.libvirt.errors import translated  # noqa: E402
from gateway.errors import (  # noqa: E402
    BackendConflict,
    BackendError,
    BackendNotFound,
    BackendUnavailable,
)

pytestmark = pytest.mark.libvirt

UNREACHABLE = "qemu+unix:///system?socket=/nonexistent"


@pytest.fixture
def conn() -> Iterator[libvirt.virConnect]:
    connection = libvirt.open("test:///default")
    yield connection
    connection.close()


def test_missing_domain_is_not_found(conn: libvirt.virConnect) -> None:
    expected = pytest.raises(BackendNotFound, match="look up nope: Domain not found")
    with expected as caught, translated("look up nope"):
        conn.lookupByName("nope")
    cause = caught.value.__cause__
    assert isinstance(cause, libvirt.libvirtError)
    assert cause.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN


@pytest.mark.parametrize(
    "lookup", ["networkLookupByName", "storagePoolLookupByName"], ids=["network", "pool"]
)
def test_missing_objects_are_not_found(conn: libvirt.virConnect, lookup: str) -> None:
    with pytest.raises(BackendNotFound), translated("look up"):
        getattr(conn, lookup)("nope")


def test_missing_volume_is_not_found(conn: libvirt.virConnect) -> None:
    pool = conn.storagePoolLookupByName("default-pool")
    with pytest.raises(BackendNotFound) as caught, translated("look up volume"):
        pool.storageVolLookupByName("nope")
    assert caught.value.__cause__.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL


def test_invalid_operation_is_conflict(conn: libvirt.virConnect) -> None:
    domain = conn.defineXML(
        "<domain type='test'><name>nimbo-err-conflict</name><memory>65536</memory>"
        "<os><type>hvm</type></os></domain>"
    )
    try:
        with pytest.raises(BackendConflict) as caught, translated("power off"):
            domain.destroy()  # not running
        assert caught.value.__cause__.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID
    finally:
        domain.undefine()


def test_other_errors_keep_libvirts_message(conn: libvirt.virConnect) -> None:
    with pytest.raises(BackendError) as caught, translated("define"):
        conn.defineXML("<domain>")
    assert type(caught.value) is BackendError
    cause = caught.value.__cause__
    assert isinstance(cause, libvirt.libvirtError)
    assert caught.value.message == f"define: {cause}"
    assert "Premature end of data" in caught.value.message


def test_unreachable_daemon_is_unavailable() -> None:
    expected = pytest.raises(BackendUnavailable, match="/nonexistent")
    with expected as caught, translated(f"connect to {UNREACHABLE}", connecting=True):
        libvirt.open(UNREACHABLE)
    assert isinstance(caught.value.__cause__, libvirt.libvirtError)


def test_driver_on_unreachable_daemon_is_unavailable() -> None:
    driver = LibvirtDriver(UNREACHABLE)
    with pytest.raises(BackendUnavailable):
        driver.host_info()
    with pytest.raises(BackendUnavailable):
        driver.compute_info("x")


def test_driver_lookup_of_missing_domain_on_default(conn: libvirt.virConnect) -> None:
    driver = LibvirtDriver("test:///default")
    try:
        with pytest.raises(BackendNotFound) as caught:
            driver.start_compute("missing")
        assert caught.value.__cause__ is None  # our own message: no libvirt call failed
        assert driver.compute_info("missing").state == "missing"
    finally:
        driver.close()


def test_bad_options_are_backend_errors() -> None:
    with pytest.raises(BackendError, match="virt_type"):
        LibvirtDriver("test:///default", virt_type="xen")
    with pytest.raises(BackendError, match="pool_type"):
        LibvirtDriver("test:///default", pool_type="zfs")
