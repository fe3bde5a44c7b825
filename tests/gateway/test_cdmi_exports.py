"""A CDMI container exported as OCCI storage, end to end: CDMI PUT of the export, the worker
filling the volume with the container's image, an OCCI storagelink naming the container's
object ID, the attach on the host, permissions, and the refusals."""

from __future__ import annotations

import io
import json
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import pycdlib
import pytest

from backends.blobfs import FilesystemBlobStore
from backends.memory import MemoryDriver
from cdmi.model import CONTAINER as CONTAINER_KIND
from cdmi.model import DATAOBJECT
from gateway.services.cdmi_exports import build_image
from tests.gateway.cdmi_client import CONTAINER, Cdmi
from tests.gateway.conftest import (
    INFRA,
    Node,
    NodeFactory,
    category,
    entity_id,
    path_of,
    text_plain,
)

MEMORY_HOST = {"host-a": "memory://export-host?cores=64&memory_mib=65536"}


@pytest.fixture
def node(make_node: NodeFactory) -> Node:
    return make_node(hosts=MEMORY_HOST)


def export(c: Cdmi, path: str, settings: dict[str, Any] | None = None) -> Any:
    return c.cdmi("PUT", path, {"exports": {"OCCI/iSCSI": settings or {}}}, media=CONTAINER)


def link(node: Node, compute: str, target: str, device: str, user: str = "alice") -> Any:
    return node.post_text("/storagelink/", text_plain(
        [category("storagelink", INFRA, "kind")],
        {"occi.core.source": path_of(compute), "occi.core.target": target,
         "occi.storagelink.deviceid": device}), user=user)


def iso_files(image: bytes) -> dict[str, bytes]:
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(image))
    files = {}
    for root, _dirs, names in iso.walk(rr_path="/"):
        for name in names:
            out = io.BytesIO()
            path = f"{root.rstrip('/')}/{name}"
            iso.get_file_from_iso_fp(out, rr_path=path)
            files[path] = out.getvalue()
    iso.close()
    return files


def test_export_attach_and_teardown(node: Node) -> None:
    c = Cdmi(node)
    c.mkdir("data/")
    c.put("data/hello.txt", {"value": "hello from CDMI"})
    c.mkdir("data/sub/")
    c.request("PUT", "data/sub/raw.bin", data=bytes(range(256)))
    container_id = c.read("data/")["objectID"]

    assert export(c, "data/").status_code == 204
    exported = c.read("data/")["exports"]["OCCI/iSCSI"]
    assert exported["identifier"] == container_id and exported["permissions"] == []
    storage = exported["storage"]
    node.run_jobs()
    assert node.get_json(storage, user="alice")["attributes"]["occi.storage.state"] \
        == "online"
    driver = node.driver()
    assert isinstance(driver, MemoryDriver)
    image = driver.ex_volume_bytes(entity_id(storage))
    assert iso_files(image) == {"/hello.txt": b"hello from CDMI",
                                "/sub/raw.bin": bytes(range(256))}

    compute = node.create_compute(user="alice")
    response = link(node, compute, "/cdmi/data/", container_id)
    assert response.status_code == 201, response.get_data(as_text=True)
    storagelink = response.headers["Location"]
    node.run_jobs()
    rendered = node.get_json(storagelink, user="alice")
    assert rendered["target"]["location"] == storage
    assert rendered["attributes"]["occi.storagelink.state"] == "active"
    device = rendered["attributes"]["occi.storagelink.deviceid"]
    assert device in driver.compute_info(entity_id(compute)).disks
    assert c.read("data/")["exports"]["OCCI/iSCSI"]["permissions"] == [path_of(compute)]

    refused = c.request("DELETE", "data/", headers={"X-CDMI-Specification-Version": "1.1.1"})
    assert refused.status_code == 409, refused.get_data(as_text=True)
    assert c.read("data/")["objectID"] == container_id

    assert node.request("DELETE", storagelink, user="alice").status_code == 200
    node.run_jobs()
    gone = c.request("DELETE", "data/", headers={"X-CDMI-Specification-Version": "1.1.1"})
    assert gone.status_code == 204, gone.get_data(as_text=True)
    node.run_jobs()
    assert node.get(storage, user="alice").status_code == 404


def test_links_to_containers_without_export_or_rights_are_refused(node: Node) -> None:
    c = Cdmi(node)
    c.mkdir("plain/")
    c.mkdir("shared/")
    export(c, "shared/")
    node.run_jobs()
    compute = node.create_compute(user="alice")
    plain_id = c.read("plain/")["objectID"]
    response = link(node, compute, "/cdmi/plain/", plain_id)
    assert response.status_code == 409
    assert "not exported" in response.get_data(as_text=True)
    unknown = link(node, compute, "/cdmi/none/", plain_id[:-4] + "0000")
    assert unknown.status_code in (404, 409)
    bobs = node.create_compute(user="bob")
    by_path = link(node, bobs, "/cdmi/shared/", "vdb", user="bob")
    assert by_path.status_code == 404  # bob holds no right on it: absent for him


def test_export_settings_are_checked(node: Node) -> None:
    c = Cdmi(node)
    c.mkdir("d/")
    bad = c.cdmi("PUT", "d/", {"exports": {"Network/NFSv4": {}}}, media=CONTAINER)
    assert bad.status_code == 400
    bad = export(c, "d/", {"permissions": [42]})
    assert bad.status_code == 400
    assert "exports" not in c.read("d/")
    lone = export(c, "d/", {"permissions": "http://localhost/compute/abc"})
    assert lone.status_code == 204
    assert c.read("d/")["exports"]["OCCI/iSCSI"]["permissions"] == [
        "http://localhost/compute/abc"]
    created = c.cdmi("PUT", "e/", {"exports": {"OCCI/iSCSI": {}}}, media=CONTAINER)
    assert created.status_code == 201
    assert json.loads(created.get_data())["exports"]["OCCI/iSCSI"]["storage"].startswith(
        "/storage/")


def test_the_image_streams_from_the_blob_files_to_its_file(tmp_path: Path) -> None:
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    big = blobs.stage(iter([bytes(range(256)) * 4096] * 32))  # 32 MiB
    big.publish("big0")
    small = blobs.stage(iter([b"small"]))
    small.publish("small0")
    files = [("d", CONTAINER_KIND, "dir0", 0), ("d/big.bin", DATAOBJECT, "big0", 32 << 20),
             ("small.txt", DATAOBJECT, "small0", 5)]
    with tempfile.TemporaryFile(dir=tmp_path) as out:
        tracemalloc.start()
        try:
            build_image(files, blobs, out)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        out.seek(0)
        image = out.read()
    assert peak < 8 << 20, f"building the image held {peak} bytes of Python memory"
    assert iso_files(image) == {"/d/big.bin": bytes(range(256)) * 4096 * 32,
                                "/small.txt": b"small"}


def test_a_link_made_before_the_export_is_filled_attaches_the_filled_volume(node: Node) -> None:
    c = Cdmi(node)
    c.mkdir("early/")
    c.put("early/note.txt", {"value": "written before the export"})
    container_id = c.read("early/")["objectID"]
    compute = node.create_compute(user="alice")
    assert export(c, "early/").status_code == 204
    storage = c.read("early/")["exports"]["OCCI/iSCSI"]["storage"]

    # no job has run: the volume is not made yet when the link is asked for
    response = link(node, compute, "/cdmi/early/", container_id)
    assert response.status_code == 201, response.get_data(as_text=True)
    node.run_jobs()

    rendered = node.get_json(response.headers["Location"], user="alice")
    assert rendered["attributes"]["occi.storagelink.state"] == "active"
    driver = node.driver()
    assert isinstance(driver, MemoryDriver)
    assert iso_files(driver.ex_volume_bytes(entity_id(storage))) == {
        "/note.txt": b"written before the export"
    }
    assert rendered["attributes"]["occi.storagelink.deviceid"] in driver.compute_info(
        entity_id(compute)
    ).disks
