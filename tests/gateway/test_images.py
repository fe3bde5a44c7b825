"""Removing OS templates: a user's saved image through the query interface (``DELETE /-/``),
any image by an administrator (``nimbo image rm``); refused while a compute starts from it or
while it is being saved; its volume deleted by the host's reconciler afterwards, a registered
file left where it is."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gateway.cli import main
from gateway.jobs import image_volume_id
from gateway.reconciler import reconcile
from gateway.services.mixins import register_image
from gateway.store.models import Image
from tests.gateway.conftest import INFRA, OS_SCHEME, Node, category, entity_id, text_plain

pytestmark = [pytest.mark.libvirt, pytest.mark.redis]


def nimbo(node: Node, *args: str) -> Result:
    env = {
        "NIMBO_DATA_DIR": str(node.config.data_dir),
        "NIMBO_DATABASE_URL": node.config.database_url,
        "NIMBO_REDIS_URL": node.config.redis_url,
        "NIMBO_CONFIG": None,
    }
    return CliRunner().invoke(main, ["image", *args], env=env)


def from_image(term: str) -> str:
    return text_plain([category("compute", INFRA, "kind"), category(term, OS_SCHEME, "mixin")])


def offered(node: Node, term: str) -> bool:
    return f'Category: {term}; scheme="{OS_SCHEME}"' in node.get("/-/").get_data(as_text=True)


def volumes(node: Node) -> set[str]:
    return {v.id for v in node.driver().list_volumes()}


def delete_from_qi(node: Node, term: str, user: str = "root") -> tuple[int, str]:
    body = f'Category: {term}; scheme="{OS_SCHEME}"; class="mixin"\r\n'
    response = node.request(
        "DELETE", "/-/", user=user, data=body, headers={"Content-Type": "text/plain"}
    )
    return response.status_code, response.get_data(as_text=True).strip()


@pytest.fixture
def saved(node: Node) -> str:
    """A compute of alice's saved as os_tpl "keeper" (the save done); returns the compute."""
    compute = node.create_compute(user="alice")
    node.run_jobs()
    response = node.action(compute, "save", user="alice", attributes={"name": "keeper"})
    assert response.status_code == 200
    node.run_jobs()
    assert image_volume_id("keeper") in volumes(node)
    return compute


def test_an_image_a_compute_starts_from_is_kept_until_that_compute_is_gone(
    node: Node, saved: str
) -> None:
    clone = node.create("compute", from_image("keeper"), user="alice")
    node.run_jobs()

    refused = nimbo(node, "rm", "keeper")

    assert refused.exit_code != 0
    assert f"disk image of 1 compute(s) ({entity_id(clone)})" in refused.output
    assert offered(node, "keeper")
    assert node.request("DELETE", clone, user="alice").status_code == 200
    node.run_jobs()

    removed = nimbo(node, "rm", "keeper")

    assert removed.exit_code == 0, removed.output
    assert removed.output.strip() == "image keeper removed"
    assert not offered(node, "keeper")
    assert node.post_text("/compute/", from_image("keeper")).status_code == 400
    assert image_volume_id("keeper") in volumes(node)  # until the host's reconciler passes
    report = reconcile(node.context, node.nimbo.queue, "host-a")
    assert report.removed_volumes == [image_volume_id("keeper")]
    assert image_volume_id("keeper") not in volumes(node)
    assert reconcile(node.context, node.nimbo.queue, "host-a").removed_volumes == []


def test_an_image_being_saved_cannot_be_removed(node: Node) -> None:
    compute = node.create_compute()
    node.run_jobs()
    assert node.action(compute, "save", attributes={"name": "busy"}).status_code == 200

    refused = nimbo(node, "rm", "busy")

    assert refused.exit_code != 0
    assert "os_tpl busy is still being saved" in refused.output
    node.run_jobs()
    with node.store.session() as session:
        image = session.get(Image, "busy")
        assert image is not None and image.state == "ready"


def test_a_registered_file_is_left_where_it_is(node: Node, tmp_path: Path) -> None:
    source = tmp_path / "site.qcow2"
    source.write_bytes(b"QFI\xfb" + bytes(4092))
    register_image(node.store, "site", str(source))

    removed = nimbo(node, "rm", "site")

    assert removed.exit_code == 0, removed.output
    assert removed.output.strip() == f"image site removed; {source} left in place"
    assert source.exists() and not offered(node, "site")


def test_removing_an_unknown_image_says_so(node: Node) -> None:
    result = nimbo(node, "rm", "nothing")
    assert result.exit_code != 0 and "no OS template nothing" in result.output


def test_a_user_deletes_the_image_they_saved_through_the_query_interface(
    node: Node, saved: str
) -> None:
    clone = node.create("compute", from_image("keeper"), user="alice")
    node.run_jobs()

    assert delete_from_qi(node, "keeper", user="bob") == (
        404, f"no OS template {OS_SCHEME}keeper")
    status, message = delete_from_qi(node, "keeper", user="alice")
    assert status == 409 and entity_id(clone) in message
    assert node.request("DELETE", clone, user="alice").status_code == 200
    node.run_jobs()

    assert delete_from_qi(node, "keeper", user="alice")[0] == 200

    assert not offered(node, "keeper")
    reconcile(node.context, node.nimbo.queue, "host-a")
    assert image_volume_id("keeper") not in volumes(node)
    assert entity_id(saved) in node.get("/compute/", user="alice").get_data(as_text=True)


def test_a_registered_image_stays_the_providers(node: Node, saved: str) -> None:
    status, message = delete_from_qi(node, "debian12", user="alice")
    assert status == 403 and "defined by the provider" in message
