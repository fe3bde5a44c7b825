"""Compute, storage, network and links through their whole life, on the OCCI wire, with the
jobs run by an in-process RQ worker against libvirt's test driver."""

from __future__ import annotations

import json
from typing import Any

import pytest

from backends.base import PowerState, config_drive_volume_id
from gateway.jobs import image_volume_id, root_volume_id
from gateway.store.models import EntityMixin, EntityRow, Host, Image, Operation
from tests.gateway.conftest import (
    COMPUTE_ACTION,
    IMAGE,
    INFRA,
    OS_SCHEME,
    RESOURCE_SCHEME,
    Node,
    category,
    compute_categories,
    entity_id,
    path_of,
    text_plain,
)

pytestmark = [pytest.mark.libvirt, pytest.mark.redis]


def attributes(node: Node, location: str, user: str = "root") -> dict[str, Any]:
    document = node.get_json(location, user=user)
    attrs: dict[str, Any] = document["attributes"]
    return attrs


def action_terms(document: dict[str, Any]) -> set[str]:
    return {a.rsplit("#", 1)[1] for a in document["actions"]}


def storage_link(storage: str, **attrs: Any) -> str:
    extra = "".join(f"; {k}={json.dumps(v)}" for k, v in attrs.items())
    return (f'<{path_of(storage)}>; rel="{INFRA}storage"; category="{INFRA}storagelink"{extra}')


def network_link(network: str) -> str:
    return f'<{path_of(network)}>; rel="{INFRA}network"; category="{INFRA}networkinterface"'


# --- create -------------------------------------------------------------------------------


def _create_text_plain(node: Node) -> tuple[int, dict[str, str], str]:
    body = text_plain(compute_categories(), {"occi.core.title": "vm1"})
    response = node.post_text("/compute/", body)
    return response.status_code, dict(response.headers), response.get_data(as_text=True)


def _create_text_occi(node: Node) -> tuple[int, dict[str, str], str]:
    headers = {"Content-Type": "text/occi", "Accept": "text/occi",
               "Category": ", ".join(compute_categories()),
               "X-OCCI-Attribute": 'occi.core.title="vm1"'}
    response = node.request("POST", "/compute/", headers=headers)
    return response.status_code, dict(response.headers), response.get_data(as_text=True)


def _create_json(node: Node) -> tuple[int, dict[str, str], str]:
    document = {"kind": f"{INFRA}compute", "mixins": [f"{OS_SCHEME}{IMAGE}"], "title": "vm1"}
    response = node.post_json("/compute/", document)
    return response.status_code, dict(response.headers), response.get_data(as_text=True)


@pytest.mark.parametrize("create", [_create_text_plain, _create_text_occi, _create_json],
                         ids=["text-plain", "text-occi", "json"])
def test_create_compute_answers_201_with_its_location(node: Node, create: Any) -> None:
    status, headers, body = create(node)

    assert status == 201, body
    location = headers["Location"]
    assert location.startswith("http://localhost/compute/")
    content_type = headers["Content-Type"].split(";")[0]
    if content_type == "text/occi":
        assert headers["X-OCCI-Location"] == location
        assert body == "OK"
    elif content_type == "text/plain":
        assert body == f"X-OCCI-Location: {location}\r\n"
    else:
        assert json.loads(body) == [location]
    row = node.row(location)
    assert row is not None and row.owner == "root" and row.host == "host-a"
    assert (row.attributes or {})["occi.core.title"] == "vm1"


def test_compute_is_inactive_and_queued_until_its_job_ran(node: Node) -> None:
    location = node.create_compute()

    before = node.get_json(location)
    assert before["attributes"]["occi.compute.state"] == "inactive"
    assert before["attributes"]["occi.compute.state.message"] == "queued"
    assert action_terms(before) == {"start", "save"}

    node.run_jobs()

    after = node.get_json(location)
    assert after["attributes"]["occi.compute.state"] == "active"
    assert "occi.compute.state.message" not in after["attributes"]
    assert action_terms(after) == {"stop", "restart", "suspend", "save"}
    info = node.driver().compute_info(entity_id(location))
    assert info.state is PowerState.RUNNING
    assert (info.cores, info.memory_mib) == (1, 1024)  # the default flavour, small
    assert info.disks == ("vda",)
    volumes = {v.id for v in node.driver().list_volumes()}
    assert root_volume_id(entity_id(location)) in volumes


def test_storage_goes_online(node: Node) -> None:
    location = node.create_storage(3.0)
    assert attributes(node, location)["occi.storage.state"] == "offline"

    node.run_jobs()

    attrs = attributes(node, location)
    assert attrs["occi.storage.state"] == "online"
    assert attrs["occi.storage.size"] == 3.0
    volume = node.driver().volume_info(entity_id(location))
    assert volume.capacity_bytes == 3 * 1024**3


def test_network_with_ipnetwork_mixin_goes_active(node: Node) -> None:
    location = node.create_network(address="10.9.0.0/24")
    document = node.get_json(location)
    assert f"{INFRA[:-1]}/network#ipnetwork" in document["mixins"]
    assert document["attributes"]["occi.network.state"] == "inactive"

    node.run_jobs()

    attrs = attributes(node, location)
    assert attrs["occi.network.state"] == "active"
    assert attrs["occi.network.address"] == "10.9.0.0/24"
    assert node.driver().network_info(entity_id(location)).active


def test_compute_with_inline_links_attaches_disk_and_nic(node: Node) -> None:
    storage, network = node.create_storage(), node.create_network()
    node.run_jobs()

    location = node.create_compute(links=[storage_link(storage), network_link(network)])
    document = node.get_json(location)
    links = {link["kind"].rsplit("#", 1)[1]: link for link in document["links"]}
    assert set(links) == {"storagelink", "networkinterface"}
    assert all(link["attributes"][f"occi.{kind}.state"] == "inactive"
               for kind, link in links.items())
    assert links["storagelink"]["attributes"]["occi.storagelink.deviceid"] == "vdb"
    assert links["storagelink"]["target"]["location"] == path_of(storage)
    mac = links["networkinterface"]["attributes"]["occi.networkinterface.mac"]

    node.run_jobs()

    document = node.get_json(location)
    assert document["attributes"]["occi.compute.state"] == "active"
    assert {link["attributes"][f"occi.{link['kind'].rsplit('#', 1)[1]}.state"]
            for link in document["links"]} == {"active"}
    info = node.driver().compute_info(entity_id(location))
    assert info.state is PowerState.RUNNING
    assert set(info.disks) == {"vda", "vdb"}
    assert info.macs == (mac,)
    for link in document["links"]:  # each link is an entity of its own as well
        kind = link["kind"].rsplit("#", 1)[1]
        own = node.get_json(f"/{kind}/{link['id'].removeprefix('urn:uuid:')}")
        assert own["source"]["location"] == path_of(location)


def test_standalone_links_attach_to_an_active_compute(node: Node) -> None:
    compute, storage, network = node.create_compute(), node.create_storage(), \
        node.create_network()
    node.run_jobs()
    source = path_of(compute)

    disk = node.create("storagelink", text_plain(
        [category("storagelink", INFRA, "kind")],
        {"occi.core.source": source, "occi.core.target": path_of(storage),
         "occi.storagelink.deviceid": "vdc"}))
    nic = node.create("networkinterface", text_plain(
        [category("networkinterface", INFRA, "kind")],
        {"occi.core.source": source, "occi.core.target": path_of(network),
         "occi.networkinterface.mac": "52:54:00:AB:CD:EF"}))
    assert attributes(node, disk)["occi.storagelink.state"] == "inactive"

    node.run_jobs()

    assert attributes(node, disk)["occi.storagelink.state"] == "active"
    nic_attrs = attributes(node, nic)
    assert nic_attrs["occi.networkinterface.state"] == "active"
    assert nic_attrs["occi.networkinterface.mac"] == "52:54:00:ab:cd:ef"
    assert nic_attrs["occi.networkinterface.interface"] == "eth0"
    info = node.driver().compute_info(entity_id(compute))
    assert info.state is PowerState.RUNNING
    assert "vdc" in info.disks
    assert "52:54:00:ab:cd:ef" in info.macs
    rendered = node.get_json(compute)
    assert {path_of(link["target"]["location"]) for link in rendered["links"]} == {
        path_of(storage), path_of(network)}


def _link_storage(node: Node, compute: str, storage: str) -> Any:
    return node.post_text("/storagelink/", text_plain(
        [category("storagelink", INFRA, "kind")],
        {"occi.core.source": path_of(compute), "occi.core.target": path_of(storage)}))


def test_a_storage_is_attached_to_a_compute_once(node: Node) -> None:
    storage = node.create_storage()
    compute = node.create_compute(links=[storage_link(storage)])
    node.run_jobs()
    links_before = node.get("/storagelink/", headers={"Accept": "text/uri-list"}).get_data()

    again = _link_storage(node, compute, storage)
    twice_inline = node.post_text("/compute/", text_plain(
        compute_categories(), links=[storage_link(storage), storage_link(storage)]))

    assert again.status_code == 409
    assert "is attached to this compute already" in again.get_data(as_text=True)
    assert twice_inline.status_code == 409
    assert node.get("/storagelink/", headers={"Accept": "text/uri-list"}).get_data() == \
        links_before
    assert len(node.get_json("/compute/")["resources"]) == 1  # nothing half made


def test_a_storage_is_shared_between_computes_where_the_host_can(node: Node) -> None:
    # libvirt's test driver locks nothing: one volume, two domains (what pOCCI expects).
    storage = node.create_storage()
    first = node.create_compute(links=[storage_link(storage)])
    node.run_jobs()

    second = node.create_compute(links=[storage_link(storage)])
    node.run_jobs()

    for compute in (first, second):
        assert node.driver().compute_info(entity_id(compute)).state is PowerState.RUNNING
        assert "vdb" in node.driver().compute_info(entity_id(compute)).disks


def test_a_qemu_host_attaches_a_storage_to_one_compute_at_a_time(node: Node) -> None:
    storage, other = node.create_storage(), node.create_compute()
    first = node.create_compute(links=[storage_link(storage)])
    node.run_jobs()
    with node.store.session(write=True) as session:  # the API only reads the host's URI
        host = session.get(Host, "host-a")
        assert host is not None
        host.uri = "qemu:///system"

    inline = node.post_text("/compute/", text_plain(
        compute_categories(), links=[storage_link(storage)]))
    standalone = _link_storage(node, other, storage)

    for response in (inline, standalone):
        assert response.status_code == 409
        message = response.get_data(as_text=True)
        assert f"attached to compute {entity_id(first)}" in message
        assert "cannot attach one volume to two computes at once" in message
    assert len(node.get_json("/compute/")["resources"]) == 2
    link = next(link["id"] for link in node.get_json(first)["links"]
                if link["kind"].endswith("#storagelink"))
    assert node.request("DELETE", f"/storagelink/{link.removeprefix('urn:uuid:')}"
                        ).status_code == 200
    assert _link_storage(node, other, storage).status_code == 201  # free once detached


def test_detaching_a_link_removes_the_device(node: Node) -> None:
    storage = node.create_storage()
    node.run_jobs()
    compute = node.create_compute(links=[storage_link(storage)])
    node.run_jobs()
    link_id = node.get_json(compute)["links"][0]["id"].removeprefix("urn:uuid:")
    assert "vdb" in node.driver().compute_info(entity_id(compute)).disks

    response = node.request("DELETE", f"/storagelink/{link_id}")
    assert response.status_code == 200
    assert node.get(f"/storagelink/{link_id}").status_code == 404
    node.run_jobs()

    assert "vdb" not in node.driver().compute_info(entity_id(compute)).disks
    assert node.get_json(compute)["links"] == []
    assert node.row(f"/storagelink/{link_id}") is None


# --- actions ------------------------------------------------------------------------------


@pytest.fixture
def running(node: Node) -> str:
    location = node.create_compute()
    node.run_jobs()
    return location


@pytest.mark.parametrize(("term", "params", "state", "power"), [
    ("stop", {}, "inactive", PowerState.STOPPED),
    ("stop", {"method": "graceful"}, "inactive", PowerState.STOPPED),
    ("suspend", {}, "suspended", PowerState.PAUSED),
    ("restart", {"method": "cold"}, "active", PowerState.RUNNING),
    ("restart", {}, "active", PowerState.RUNNING),
])
def test_action_moves_the_compute(node: Node, running: str, term: str,
                                  params: dict[str, str], state: str,
                                  power: PowerState) -> None:
    response = node.action(running, term, attributes=params)

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_data(as_text=True)
    assert 'occi.compute.state="active"' in body  # the old state until the job ran...
    assert f'occi.compute.state.message="{term} queued"' in body  # ...and the progress
    node.run_jobs()
    attrs = attributes(node, running)
    assert attrs["occi.compute.state"] == state
    assert "occi.compute.state.message" not in attrs
    assert node.driver().compute_info(entity_id(running)).state is power


def test_stop_then_start_and_suspend_then_start(node: Node, running: str) -> None:
    for term, state in (("stop", "inactive"), ("start", "active"), ("suspend", "suspended"),
                        ("start", "active")):
        assert node.action(running, term).status_code == 200
        node.run_jobs()
        assert attributes(node, running)["occi.compute.state"] == state, term
    assert node.driver().compute_info(entity_id(running)).state is PowerState.RUNNING


def test_rendered_action_links_follow_the_state(node: Node, running: str) -> None:
    body = node.get(running).get_data(as_text=True)
    assert f"{path_of(running)}?action=stop>" in body
    assert "?action=start>" not in body

    node.action(running, "stop")
    node.run_jobs()

    body = node.get(running).get_data(as_text=True)
    assert f'{path_of(running)}?action=start>; rel="{COMPUTE_ACTION}start"' in body
    assert "?action=stop>" not in body
    assert "?action=restart>" not in body
    document = node.get_json(running)
    assert action_terms(document) == {"start", "save"}


def test_invalid_transition_is_409_naming_the_valid_actions(node: Node, running: str) -> None:
    node.action(running, "stop")
    node.run_jobs()

    response = node.action(running, "restart")

    assert response.status_code == 409
    message = response.get_data(as_text=True)
    assert "restart" in message and "inactive" in message
    assert "valid now: start, save" in message
    with node.store.session() as session:
        verbs = session.query(Operation.verb).filter(
            Operation.entity_id == entity_id(running)).all()
    assert ("restart",) not in verbs  # nothing was queued


def test_action_term_of_body_must_match_the_query(node: Node, running: str) -> None:
    body = text_plain([category("stop", COMPUTE_ACTION, "action")])
    response = node.post_text(f"{path_of(running)}?action=start", body)
    assert response.status_code == 400
    assert "?action=start" in response.get_data(as_text=True)


def test_save_answers_the_new_os_template(node: Node, running: str) -> None:
    response = node.action(running, "save", attributes={"name": "my-snapshot"})

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_data(as_text=True)
    assert body.startswith(f'Category: my-snapshot; scheme="{OS_SCHEME}"; class="mixin"')
    assert f'rel="{INFRA}os_tpl"' in body
    qi = node.get("/-/").get_data(as_text=True)
    assert f'Category: my-snapshot; scheme="{OS_SCHEME}"' in qi
    with node.store.session() as session:
        image = session.get(Image, "my-snapshot")
        assert image is not None and image.state == "saving"

    node.run_jobs()

    with node.store.session() as session:
        image = session.get(Image, "my-snapshot")
        assert image is not None and image.state == "ready"
        source = image.source
    assert source in {v.path for v in node.driver().list_volumes()}
    assert attributes(node, running)["occi.compute.state"] == "active"
    # the saved template serves a new compute
    body = text_plain([category("compute", INFRA, "kind"),
                       category("my-snapshot", OS_SCHEME, "mixin")])
    clone = node.create("compute", body)
    node.run_jobs()
    assert attributes(node, clone)["occi.compute.state"] == "active"


@pytest.mark.parametrize("stop_first", [False, True], ids=["running", "stopped"])
def test_saved_image_stands_alone_once_its_compute_is_gone(
    node: Node, running: str, stop_first: bool
) -> None:
    if stop_first:
        node.action(running, "stop")
        node.run_jobs()
    root = node.driver().volume_info(root_volume_id(entity_id(running)))
    assert root.backing_path is not None  # the compute's disk is a clone of its image
    assert node.action(running, "save", attributes={"name": "keeper"}).status_code == 200
    node.run_jobs()
    assert node.request("DELETE", running).status_code == 200
    node.run_jobs()
    assert node.row(running) is None

    volumes = {v.id: v for v in node.driver().list_volumes()}
    assert root.id not in volumes
    saved = volumes[image_volume_id("keeper")]
    assert saved.backing_path is None  # a full copy, not an overlay on the deleted disk
    assert (saved.capacity_bytes, saved.format) == (root.capacity_bytes, "qcow2")
    with node.store.session() as session:
        image = session.get(Image, "keeper")
        assert image is not None and (image.state, image.source) == ("ready", saved.path)
        assert image.size_bytes == saved.capacity_bytes
    body = text_plain([category("compute", INFRA, "kind"),
                       category("keeper", OS_SCHEME, "mixin")])
    clone = node.create("compute", body)
    node.run_jobs()
    assert attributes(node, clone)["occi.compute.state"] == "active"
    assert node.driver().volume_info(root_volume_id(entity_id(clone))).backing_path == saved.path


def test_a_compute_cannot_start_from_an_image_still_being_saved(node: Node, running: str) -> None:
    assert node.action(running, "save", attributes={"name": "half"}).status_code == 200
    body = text_plain([category("compute", INFRA, "kind"), category("half", OS_SCHEME, "mixin")])

    response = node.post_text("/compute/", body)

    assert response.status_code == 409
    message = response.get_data(as_text=True)
    assert "os_tpl half is still being saved" in message and entity_id(running) in message
    with node.store.session() as session:
        assert session.query(EntityRow).filter(EntityRow.kind == f"{INFRA}compute").count() == 1
    node.run_jobs()
    assert node.post_text("/compute/", body).status_code == 201


def test_a_failed_save_takes_its_template_back_and_leaves_the_compute_as_it_was(
    node: Node, running: str
) -> None:
    assert node.action(running, "save", attributes={"name": "doomed"}).status_code == 200
    node.driver().delete_volume(root_volume_id(entity_id(running)))  # nothing left to copy

    node.run_jobs()

    attrs = attributes(node, running)
    assert attrs["occi.compute.state"] == "active"
    assert attrs["occi.compute.state.message"].startswith("save failed: ")
    with node.store.session() as session:
        assert session.get(Image, "doomed") is None
        op = session.query(Operation).filter(
            Operation.entity_id == entity_id(running), Operation.verb == "save").one()
        assert op.status == "failed" and op.message == attrs["occi.compute.state.message"]
    assert "doomed" not in node.get("/-/").get_data(as_text=True)
    assert image_volume_id("doomed") not in {v.id for v in node.driver().list_volumes()}
    body = text_plain([category("compute", INFRA, "kind"),
                       category("doomed", OS_SCHEME, "mixin")])
    assert node.post_text("/compute/", body).status_code == 400


def test_a_save_whose_compute_is_gone_when_it_runs_takes_its_template_back(
    node: Node, running: str
) -> None:
    # A save re-queued by the reconciler after its compute's delete had already run.
    assert node.action(running, "save", attributes={"name": "orphan"}).status_code == 200
    with node.store.session(write=True) as session:
        session.query(EntityMixin).filter(EntityMixin.entity_id == entity_id(running)).delete()
        session.query(EntityRow).filter(EntityRow.id == entity_id(running)).delete()

    node.run_jobs()

    with node.store.session() as session:
        assert session.get(Image, "orphan") is None
    assert "orphan" not in node.get("/-/").get_data(as_text=True)


# --- updates ------------------------------------------------------------------------------


def test_new_resource_tpl_resizes_the_compute(node: Node, running: str) -> None:
    body = text_plain([category("compute", INFRA, "kind"),
                       category("medium", RESOURCE_SCHEME, "mixin")])

    response = node.post_text(running, body)

    assert response.status_code == 200, response.get_data(as_text=True)
    document = node.get_json(running)
    assert f"{RESOURCE_SCHEME}medium" in document["mixins"]
    assert f"{RESOURCE_SCHEME}small" not in document["mixins"]
    assert f"{OS_SCHEME}{IMAGE}" in document["mixins"]
    assert document["attributes"]["occi.compute.cores"] == 2
    assert document["attributes"]["occi.compute.memory"] == 4.0
    assert document["attributes"]["occi.compute.state.message"] == "resize queued"
    row = node.row(running)
    assert row is not None and (row.cores, row.memory_mib) == (2, 4096)

    node.run_jobs()

    assert "occi.compute.state.message" not in attributes(node, running)
    assert node.action(running, "start").status_code == 409  # running: start is not valid
    assert node.action(running, "stop").status_code == 200  # new size at the next boot
    # active until the stop has run
    assert node.action(running, "start").status_code == 409
    node.run_jobs()
    assert node.action(running, "start").status_code == 200
    node.run_jobs()
    info = node.driver().compute_info(entity_id(running))
    assert (info.state, info.cores, info.memory_mib) == (PowerState.RUNNING, 2, 4096)


def test_resize_of_a_stopped_compute_applies_at_once(node: Node) -> None:
    sized = {"occi.compute.cores": 3, "occi.compute.memory": 2.0}
    compute = node.create_compute(attributes=sized)  # sizes given: no flavour is added
    node.run_jobs()
    node.action(compute, "stop")
    node.run_jobs()

    response = node.post_text(compute, text_plain(
        [category("compute", INFRA, "kind")], {"occi.compute.cores": 4}))

    assert response.status_code == 200, response.get_data(as_text=True)
    node.run_jobs()
    info = node.driver().compute_info(entity_id(compute))
    assert (info.state, info.cores, info.memory_mib) == (PowerState.STOPPED, 4, 2048)
    assert attributes(node, compute)["occi.compute.cores"] == 4


def test_sizes_of_a_flavoured_compute_belong_to_the_template(node: Node, running: str) -> None:
    response = node.post_text(running, text_plain([], {"occi.compute.cores": 3}))
    assert response.status_code == 400
    assert "occi.compute.cores is immutable" in response.get_data(as_text=True)
    row = node.row(running)
    assert row is not None and row.cores == 1


def test_resize_beyond_the_host_is_503_and_changes_nothing(node: Node) -> None:
    compute = node.create_compute(attributes={"occi.compute.cores": 2,
                                              "occi.compute.memory": 1.0})
    response = node.post_text(compute, text_plain([], {"occi.compute.cores": 64}))
    assert response.status_code == 503, response.get_data(as_text=True)
    assert "64 free cores" in response.get_data(as_text=True)
    row = node.row(compute)
    assert row is not None and (row.cores, row.memory_mib) == (2, 1024)
    assert attributes(node, compute)["occi.compute.cores"] == 2


def test_storage_grows_and_refuses_to_shrink(node: Node) -> None:
    storage = node.create_storage(2.0)
    node.run_jobs()

    response = node.post_text(storage, text_plain([], {"occi.storage.size": 5.0}))
    assert response.status_code == 200, response.get_data(as_text=True)
    node.run_jobs()
    assert node.driver().volume_info(entity_id(storage)).capacity_bytes == 5 * 1024**3
    attrs = attributes(node, storage)
    assert (attrs["occi.storage.size"], attrs["occi.storage.state"]) == (5.0, "online")

    response = node.post_text(storage, text_plain([], {"occi.storage.size": 1.0}))
    assert response.status_code == 409
    assert "shrink" in response.get_data(as_text=True)
    assert attributes(node, storage)["occi.storage.size"] == 5.0


def test_put_creates_at_the_url(node: Node) -> None:
    wanted = "0d4c5e2a-7b1f-4c3d-9e8a-112233445566"
    body = text_plain(compute_categories(), {"occi.core.title": "put-made"})

    response = node.request("PUT", f"/compute/{wanted}", data=body,
                            headers={"Content-Type": "text/plain"})

    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.headers["Location"] == f"http://localhost/compute/{wanted}"
    node.run_jobs()
    assert attributes(node, f"/compute/{wanted}")["occi.compute.state"] == "active"


@pytest.mark.parametrize("wanted", ["image-keeper", "vm1-root", "vm1-configdrive"])
def test_an_id_naming_a_volume_of_the_gateway_is_refused(node: Node, wanted: str) -> None:
    body = text_plain([category("storage", INFRA, "kind")], {"occi.storage.size": 1.0})

    at_url = node.request("PUT", f"/storage/{wanted}", data=body,
                          headers={"Content-Type": "text/plain"})
    in_body = node.post_text("/storage/", text_plain(
        [category("storage", INFRA, "kind")], {"occi.storage.size": 1.0, "occi.core.id": wanted}))

    for response in (at_url, in_body):
        assert response.status_code == 400
        assert f"occi.core.id {wanted} is reserved" in response.get_data(as_text=True)
    assert node.count_entities() == 0


def test_a_create_with_the_id_of_an_entity_that_exists_is_409(node: Node) -> None:
    taken = "0d4c5e2a-7b1f-4c3d-9e8a-112233445566"
    first = node.post_text("/compute/", text_plain(compute_categories(), {"occi.core.id": taken}))
    assert first.status_code == 201, first.get_data(as_text=True)

    again = node.post_text("/storage/", text_plain(
        [category("storage", INFRA, "kind")], {"occi.storage.size": 1.0, "occi.core.id": taken}))

    assert again.status_code == 409
    assert f"an entity with id {taken} exists already" in again.get_data(as_text=True)
    assert node.count_entities() == 1


def test_put_with_a_different_id_is_400(node: Node) -> None:
    body = text_plain(compute_categories(),
                      {"occi.core.id": "urn:uuid:aaaaaaaa-7b1f-4c3d-9e8a-112233445566"})
    response = node.request("PUT", "/compute/0d4c5e2a-7b1f-4c3d-9e8a-112233445566", data=body,
                            headers={"Content-Type": "text/plain"})
    assert response.status_code == 400
    assert node.count_entities() == 0


def test_put_replace_keeps_links(node: Node) -> None:
    storage = node.create_storage()
    node.run_jobs()
    compute = node.create_compute(attributes={"occi.core.title": "before"},
                                  links=[storage_link(storage)])
    node.run_jobs()
    links_before = node.get_json(compute)["links"]

    body = text_plain(compute_categories(), {"occi.core.title": "after"})
    response = node.request("PUT", compute, data=body, headers={"Content-Type": "text/plain"})

    assert response.status_code == 200, response.get_data(as_text=True)
    assert 'occi.core.title="after"' in response.get_data(as_text=True)
    document = node.get_json(compute)
    assert document["title"] == "after"
    assert [link["id"] for link in document["links"]] == [link["id"] for link in links_before]
    assert "vdb" in node.driver().compute_info(entity_id(compute)).disks


# --- delete -------------------------------------------------------------------------------


def test_delete_compute_removes_it_everywhere(node: Node) -> None:
    storage, network = node.create_storage(), node.create_network()
    node.run_jobs()
    compute = node.create_compute(links=[storage_link(storage), network_link(network)])
    node.run_jobs()
    cid = entity_id(compute)
    link_ids = [link["id"].removeprefix("urn:uuid:") for link in node.get_json(compute)["links"]]

    response = node.request("DELETE", compute, headers={"Accept": "text/occi"})

    assert response.status_code == 200
    assert response.get_data(as_text=True) == "OK"
    assert node.get(compute).status_code == 404
    listing = node.get("/compute/", headers={"Accept": "text/uri-list"})
    assert path_of(compute) not in listing.get_data(as_text=True)

    node.run_jobs()

    assert cid not in {c.id for c in node.driver().list_computes()}
    left = {v.id for v in node.driver().list_volumes()}
    assert root_volume_id(cid) not in left and config_drive_volume_id(cid) not in left
    with node.store.session() as session:
        assert session.get(EntityRow, cid) is None
        assert session.query(EntityMixin).filter(EntityMixin.entity_id == cid).count() == 0
        for link_id in link_ids:
            assert session.get(EntityRow, link_id) is None
    # the storage and network outlive the compute and are free again
    assert attributes(node, storage)["occi.storage.state"] == "online"
    assert node.request("DELETE", storage).status_code == 200
    node.run_jobs()
    assert entity_id(storage) not in {v.id for v in node.driver().list_volumes()}
    assert node.count_entities() == 1  # the network


def test_deleting_linked_storage_is_409(node: Node) -> None:
    storage = node.create_storage()
    node.run_jobs()
    compute = node.create_compute(links=[storage_link(storage)])
    node.run_jobs()

    response = node.request("DELETE", storage)

    assert response.status_code == 409
    message = response.get_data(as_text=True)
    assert entity_id(compute) in message and "delete the link" in message
    assert attributes(node, storage)["occi.storage.state"] == "online"
    assert node.driver().volume_info(entity_id(storage)).capacity_bytes > 0
