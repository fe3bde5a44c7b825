"""Libvirt driver behaviour beyond the contract suite: consoles, uploads (``test:`` hosts)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

libvirt = pytest.importorskip("libvirt")

from backends.base import ComputeSpec, NetworkSpec, VolumeSpec, domain_name  # noqa: E402
from backends.libvirt.driver import (  # noqa: E402
    UPLOAD_CHUNK_BYTES,
    LibvirtDriver,
    is_local_uri,
    upload_chunks,
)
from gateway.errors import BackendError  # noqa: E402
from tests.backends.conftest import host_file_uri  # noqa: E402

pytestmark = pytest.mark.libvirt

SPEC = ComputeSpec(id="c1", name="c1", cores=1, memory_mib=64)


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[LibvirtDriver]:
    driver = LibvirtDriver(host_file_uri("host-a"), console_dir=str(tmp_path))
    yield driver
    driver.close()


def test_console_is_the_file_the_domain_xml_names(driver: LibvirtDriver, tmp_path: Path) -> None:
    driver.ensure_compute(SPEC)
    text = driver._xml(driver._require_domain("c1"))
    log = tmp_path / f"{domain_name('c1')}.console.log"
    assert f"path='{log}'" in text or f'path="{log}"' in text
    log.write_bytes(b"SeaBIOS\r\n\xff\xfe broken bytes\n")
    assert driver.console_log("c1") == "SeaBIOS\r\n\ufffd\ufffd broken bytes\n"


@pytest.mark.parametrize(
    "uri",
    ["qemu:///system", "qemu:///session", "qemu+unix:///system?socket=/x", "test:///default"],
)
def test_local_uris(uri: str) -> None:
    assert is_local_uri(uri)


@pytest.mark.parametrize(
    "uri", ["qemu+ssh://root@host-b/system", "qemu+tls://host-b/system", "qemu+ssh:///system"]
)
def test_remote_uris(uri: str) -> None:
    assert not is_local_uri(uri)


def test_remote_console_says_where_to_read_it() -> None:
    driver = LibvirtDriver("qemu+ssh://root@hv7.example.org/system")  # never connected
    with pytest.raises(BackendError, match=r"remote host .* read it on that host"):
        driver.console_log("c1")
    assert driver._connection is None


@pytest.mark.parametrize(
    ("length", "size"),
    [(1, 1), (UPLOAD_CHUNK_BYTES, UPLOAD_CHUNK_BYTES), (3000, 2 * 1024**2), (200_001, 200_001)],
)
def test_upload_is_the_data_then_zeros_in_bounded_chunks(length: int, size: int) -> None:
    data = bytes(i % 251 for i in range(length))
    chunks = list(upload_chunks(data, size))
    assert all(0 < len(chunk) <= UPLOAD_CHUNK_BYTES for chunk in chunks)
    assert b"".join(chunks) == data + bytes(size - length)


def test_listings_leave_out_what_went_away_meanwhile(
    driver: LibvirtDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other workers share the host: an object deleted between a listing and the look at it
    is not an error (libvirt answers "not found" for its stale handle)."""
    for name in ("c1", "c2"):
        driver.ensure_compute(ComputeSpec(id=name, name=name, cores=1, memory_mib=64))
        driver.ensure_volume(VolumeSpec(id=name, size_bytes=1024**2))
        driver.ensure_network(NetworkSpec(id=name))
    conn = driver._conn()
    domains, networks = conn.listAllDomains(0), conn.listAllNetworks(0)
    volumes = driver._pool().listAllVolumes(0)
    driver.delete_compute("c2")
    driver.delete_volume("c2")
    driver.delete_network("c2")
    monkeypatch.setattr(libvirt.virConnect, "listAllDomains", lambda _self, _flags=0: domains)
    monkeypatch.setattr(libvirt.virConnect, "listAllNetworks", lambda _self, _flags=0: networks)
    monkeypatch.setattr(libvirt.virStoragePool, "listAllVolumes", lambda _self, _flags=0: volumes)
    assert [c.id for c in driver.list_computes()] == ["c1"]
    assert [v.id for v in driver.list_volumes()] == ["c1"]
    assert [n.id for n in driver.list_networks()] == ["c1"]
