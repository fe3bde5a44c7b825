"""Sample model objects and the golden-file helper shared by the rendering tests.

Golden files live in ``tests/fixtures/rendering/``, one per expected wire output. To regenerate
them after a deliberate change, run the tests with ``NIMBO_UPDATE_GOLDEN=1`` and review the diff:

    NIMBO_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_rendering_text.py tests/test_rendering_json.py
"""

from __future__ import annotations

from pathlib import Path

from occi import infrastructure as infra
from occi.core import Category, Link, Mixin, RenderContext, Resource
from occi.registry import Flavour, OsImage, os_template, resource_template
from occi.rendering import Rendered
from tests import golden

GOLDEN_DIR = Path(__file__).parent / "fixtures" / "rendering"
CTX = RenderContext(base_url="https://c.example/")

COMPUTE_ID = "5f1c0b6e-2a4d-4c1e-9b7a-0d3e8f6a1c20"
STORAGE_ID = "9a0e4b7c-1d2f-4e3a-8b5c-6d7e8f9a0b1c"
NETWORK_ID = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
STORAGELINK_ID = "77d2a1b3-c4d5-4e6f-8a9b-0c1d2e3f4a5b"
NETIF_ID = "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5c"

OS_SCHEME = "https://c.example/occi/os_tpl#"
RESOURCE_SCHEME = "https://c.example/occi/resource_tpl#"
DEBIAN = os_template(OsImage("debian12", "Debian 12 (bookworm)"), OS_SCHEME)
SMALL = resource_template(Flavour("small", "Small: 2 cores, 4 GiB", cores=2, memory=4.0),
                          RESOURCE_SCHEME)


def storagelink() -> Link:
    return Link(
        id=STORAGELINK_ID, kind=infra.STORAGELINK,
        attributes={
            "occi.core.id": f"urn:uuid:{STORAGELINK_ID}",
            "occi.storagelink.deviceid": "vdb",
            "occi.storagelink.mountpoint": "/mnt/data",
            "occi.storagelink.state": "active",
        },
        source=f"/compute/{COMPUTE_ID}", target=f"/storage/{STORAGE_ID}",
        source_kind=infra.COMPUTE, target_kind=infra.STORAGE,
    )


def networkinterface() -> Link:
    return Link(
        id=NETIF_ID, kind=infra.NETWORKINTERFACE, mixins=[infra.IPNETWORKINTERFACE],
        attributes={
            "occi.core.id": f"urn:uuid:{NETIF_ID}",
            "occi.networkinterface.interface": "eth0",
            "occi.networkinterface.mac": "52:54:00:12:34:56",
            "occi.networkinterface.state": "active",
            "occi.networkinterface.address": "192.168.122.10/24",
            "occi.networkinterface.gateway": "192.168.122.1",
            "occi.networkinterface.allocation": "static",
        },
        source=f"/compute/{COMPUTE_ID}", target=f"/network/{NETWORK_ID}",
        source_kind=infra.COMPUTE, target_kind=infra.NETWORK,
    )


def compute() -> Resource:
    """A realistic compute: provider templates, sizes, one storage link, one interface."""
    return Resource(
        id=COMPUTE_ID, kind=infra.COMPUTE, mixins=[DEBIAN, SMALL],
        attributes={
            "occi.core.id": f"urn:uuid:{COMPUTE_ID}",
            "occi.core.title": "vm1",
            "occi.core.summary": "Web front end, Thu, 20 Aug 2015 \"blue\"",
            "occi.compute.architecture": "x64",
            "occi.compute.cores": 2,
            "occi.compute.share": 1,
            "occi.compute.memory": 4.0,
            "occi.compute.hostname": "vm1.c.example",
            "occi.compute.state": "inactive",
            "occi.compute.state.message": None,
        },
        actions=[infra.START],
        links=[storagelink(), networkinterface()],
    )


def storage() -> Resource:
    return Resource(
        id=STORAGE_ID, kind=infra.STORAGE,
        attributes={"occi.core.id": f"urn:uuid:{STORAGE_ID}", "occi.storage.size": 0.125,
                    "occi.storage.state": "online"},
        actions=[infra.OFFLINE],
    )


def user_mixin() -> Mixin:
    return Mixin("http://example.com/occi/my_stuff#", "my_stuff", "My stuff",
                 location="/my_stuff/", user_defined=True)


def query_interface() -> list[Category]:
    """A small query interface: kinds, templates, interface mixin, actions."""
    return [infra.COMPUTE, infra.STORAGELINK, infra.OS_TPL, DEBIAN, SMALL,
            infra.IPNETWORKINTERFACE, user_mixin(), infra.START, infra.STOP]


def headers_text(rendered: Rendered) -> bytes:
    """A text/occi rendering as one file: Content-Type, header fields, blank line, body."""
    lines = [f"Content-Type: {rendered.content_type}"]
    lines.extend(f"{name}: {value}" for name, value in rendered.headers)
    return ("\n".join(lines) + "\n\n").encode() + rendered.body


def assert_golden(name: str, actual: bytes) -> None:
    golden.assert_golden(GOLDEN_DIR, name, actual)
