"""Jobs converge: run twice, after a crash half way, for entities that are gone; backend
failures end in ``error`` with a message; a dead queue refuses creates cleanly."""

from __future__ import annotations

import pytest
from rq import Queue
from rq.job import JobStatus
from rq.registry import FailedJobRegistry
from sqlalchemy import delete, func, select, update

from backends.base import ComputeInfo, PowerState, VolumeSpec, config_drive_volume_id
from gateway import jobs
from gateway.queue import host_queue_name
from gateway.services.mixins import register_image
from gateway.store.models import EntityMixin, EntityRow, Operation
from tests.gateway.conftest import INFRA, Node, NodeFactory, entity_id, path_of, text_plain

pytestmark = pytest.mark.redis

MEMORY_HOST = {"host-a": "memory://host-a?cores=8&memory_mib=8192"}


def operations(node: Node, location: str, verb: str) -> list[Operation]:
    with node.store.session() as session:
        return list(session.scalars(select(Operation).where(
            Operation.entity_id == entity_id(location), Operation.verb == verb)
            .order_by(Operation.created_at)))


def failed_jobs(node: Node, host: str = "host-a") -> list[str]:
    registry = FailedJobRegistry(host_queue_name(host), connection=node.connection)
    return list(registry.get_job_ids())


def state(node: Node, location: str) -> tuple[str, str | None]:
    row = node.row(location)
    assert row is not None
    return row.state, row.state_message


def reopen_operation(node: Node, operation_id: str, status: str = "queued") -> None:
    """As if the job's outcome had never been written (a worker killed before the end)."""
    with node.store.session(write=True) as session:
        session.execute(update(Operation).where(Operation.id == operation_id)
                        .values(status=status, finished_at=None))


def computes(node: Node) -> list[ComputeInfo]:
    return node.driver().list_computes()


# --- idempotence ------------------------------------------------------------------------


@pytest.mark.libvirt
def test_provisioning_twice_converges_to_the_same_compute(node: Node) -> None:
    location = node.create_compute()
    node.run_jobs()
    op = operations(node, location, "provision")[0]
    assert op.status == "done"
    first = node.driver().compute_info(entity_id(location))
    volumes = sorted(v.id for v in node.driver().list_volumes())

    jobs.provision_compute(entity_id(location), op.id)  # done: nothing to do
    reopen_operation(node, op.id)  # outcome lost: the whole job runs again
    jobs.provision_compute(entity_id(location), op.id)

    assert state(node, location) == ("active", None)
    assert node.driver().compute_info(entity_id(location)) == first
    assert sorted(v.id for v in node.driver().list_volumes()) == volumes
    assert [c.id for c in computes(node)] == [entity_id(location)]
    assert operations(node, location, "provision")[0].status == "done"


@pytest.mark.libvirt
def test_enqueueing_the_same_operation_again_runs_it_once_more_harmlessly(node: Node) -> None:
    location = node.create_compute()
    node.run_jobs()
    node.action(location, "stop")
    node.run_jobs()
    stop = operations(node, location, "stop")[0]

    reopen_operation(node, stop.id)
    node.nimbo.queue.enqueue("host-a", jobs.act_on_compute, entity_id(location), stop.id)
    node.nimbo.queue.enqueue("host-a", jobs.act_on_compute, entity_id(location), stop.id)
    node.run_jobs()

    assert state(node, location) == ("inactive", None)
    assert node.driver().compute_info(entity_id(location)).state is PowerState.STOPPED
    assert failed_jobs(node) == []


def test_a_create_registers_its_queue_and_job_in_one_transaction(
        node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    pipelines: list[list[str]] = []
    real_pipeline = node.connection.pipeline

    def counted(*args: object, **kwargs: object) -> object:
        pipe = real_pipeline(*args, **kwargs)  # type: ignore[arg-type]
        real_execute = pipe.execute

        def execute(*a: object, **k: object) -> object:
            pipelines.append([str(c[0][0]) for c in pipe.command_stack])
            return real_execute(*a, **k)  # type: ignore[arg-type]

        pipe.execute = execute  # type: ignore[method-assign]
        return pipe

    monkeypatch.setattr(node.connection, "pipeline", counted)
    location = node.create_compute()

    assert len(pipelines) == 1, pipelines
    assert {"SADD", "HSET", "RPUSH"} <= set(pipelines[0])
    queue = Queue(host_queue_name("host-a"), connection=node.connection)
    assert queue.key.encode() in node.connection.smembers(Queue.redis_queues_keys)
    [provision] = operations(node, location, "provision")
    assert queue.job_ids == [f"op-{provision.id}"]
    assert queue.fetch_job(f"op-{provision.id}").get_status() == JobStatus.QUEUED


@pytest.mark.libvirt
def test_actions_queued_behind_each_other_run_in_order(node: Node) -> None:
    location = node.create_compute()
    assert node.action(location, "start").status_code == 200  # behind the provision
    node.run_jobs()
    assert state(node, location) == ("active", None)  # start on a running domain: no-op

    assert node.action(location, "suspend").status_code == 200
    assert node.action(location, "stop").status_code == 200  # checked against "active"
    node.run_jobs()

    assert state(node, location) == ("inactive", None)
    assert node.driver().compute_info(entity_id(location)).state is PowerState.STOPPED
    assert [op.status for op in operations(node, location, "suspend")] == ["done"]
    assert failed_jobs(node) == []


# --- entities that are gone ------------------------------------------------------------


@pytest.mark.libvirt
def test_job_for_a_deleted_entity_is_a_no_op(node: Node) -> None:
    location = node.create_compute()
    node.run_jobs()
    assert node.action(location, "stop").status_code == 200  # queued, not run
    stop = operations(node, location, "stop")[0]
    assert node.request("DELETE", location).status_code == 200
    removal = operations(node, location, "delete")[0]

    jobs.delete_compute(entity_id(location), removal.id)  # the delete overtakes the stop
    assert node.row(location) is None
    node.run_jobs()  # the stop, then the delete again

    assert failed_jobs(node) == []
    assert computes(node) == []
    with node.store.session() as session:
        assert session.get(Operation, stop.id).status == "done"
        assert session.get(Operation, removal.id).status == "done"
    # a job naming an operation nobody wrote is harmless too
    jobs.provision_compute(entity_id(location), "00000000-0000-4000-8000-000000000000")
    assert computes(node) == []


@pytest.mark.libvirt
def test_storage_job_for_a_deleted_storage_is_a_no_op(node: Node) -> None:
    storage = node.create_storage()
    op = operations(node, storage, "provision")[0]
    with node.store.session(write=True) as session:  # deleted before its job ran
        session.execute(delete(EntityRow).where(EntityRow.id == entity_id(storage)))

    node.run_jobs()

    assert failed_jobs(node) == []
    assert node.driver().list_volumes() == []
    with node.store.session() as session:
        assert session.get(Operation, op.id).status == "done"


# --- crashes half way --------------------------------------------------------------------


@pytest.mark.libvirt
def test_provision_after_a_worker_died_half_way_converges(node: Node) -> None:
    location = node.create_compute()
    cid = entity_id(location)
    op = operations(node, location, "provision")[0]
    # what a worker killed after "defining domain" leaves: op running, disk and domain
    # defined, domain not started, progress message stuck
    plan = _plan(node, cid)
    assert plan.root is not None
    node.driver().ensure_volume(plan.root)
    node.driver().ensure_compute(plan.spec)
    reopen_operation(node, op.id, status="running")
    with node.store.session(write=True) as session:
        session.execute(update(EntityRow).where(EntityRow.id == cid)
                        .values(state_message="defining domain"))
    assert node.driver().compute_info(cid).state is PowerState.STOPPED

    node.run_jobs()

    assert state(node, location) == ("active", None)
    assert node.driver().compute_info(cid).state is PowerState.RUNNING
    assert [c.id for c in computes(node)] == [cid]
    assert sorted(v.id for v in node.driver().list_volumes()) == sorted(
        [jobs.root_volume_id(cid), config_drive_volume_id(cid)])


@pytest.mark.libvirt
def test_delete_after_a_worker_died_half_way_converges(node: Node) -> None:
    location = node.create_compute()
    node.run_jobs()
    cid = entity_id(location)
    node.request("DELETE", location)
    node.driver().delete_compute(cid)  # the dead worker got this far: domain gone, disk left

    node.run_jobs()

    assert computes(node) == []
    assert node.driver().list_volumes() == []
    assert node.row(location) is None
    assert failed_jobs(node) == []


@pytest.mark.libvirt
def test_storage_provision_with_the_volume_already_there_converges(node: Node) -> None:
    storage = node.create_storage(2.0)
    node.driver().ensure_volume(VolumeSpec(id=entity_id(storage), size_bytes=2 * 1024**3))

    node.run_jobs()

    assert state(node, storage) == ("online", None)
    assert [v.id for v in node.driver().list_volumes()] == [entity_id(storage)]


def _plan(node: Node, compute_id: str) -> jobs.ComputePlan:
    return jobs._plan(compute_id)  # the worker's own view of what to build


# --- backend errors -----------------------------------------------------------------------


def test_backend_error_puts_the_compute_in_error_with_a_message(
        make_node: NodeFactory) -> None:
    node = make_node(MEMORY_HOST)
    location = node.create_compute()
    node.run_jobs()
    cid = entity_id(location)
    node.driver().delete_compute(cid)  # behind the gateway's back

    assert node.action(location, "stop").status_code == 200
    node.run_jobs()

    document = node.get_json(location)
    attrs = document["attributes"]
    assert attrs["occi.compute.state"] == "error"
    assert attrs["occi.compute.state.message"] == (
        f"stop failed: compute {cid}: no such domain")
    assert {a.rsplit("#", 1)[1] for a in document["actions"]} == {"start"}
    stop = operations(node, location, "stop")[0]
    assert (stop.status, stop.message) == ("failed", attrs["occi.compute.state.message"])
    assert failed_jobs(node) == []  # handled: the entity carries the failure, not RQ


def test_unreachable_host_without_retries_is_an_error(make_node: NodeFactory) -> None:
    node = make_node(MEMORY_HOST)
    location = node.create_compute()
    node.run_jobs()
    node.driver().close()  # the connection to the host is gone for good

    node.action(location, "suspend")
    node.run_jobs()

    status, message = state(node, location)
    assert status == "error"
    assert message is not None
    assert message.startswith("suspend failed: host unreachable: ")
    assert "closed" in message


def test_unreachable_host_with_retries_left_says_so_and_recovers(
        make_node: NodeFactory) -> None:
    node = make_node(MEMORY_HOST, job_retries=1)
    location = node.create_compute()
    node.run_jobs()
    node.driver().close()

    node.action(location, "suspend")
    node.run_jobs()

    status, message = state(node, location)
    assert status == "active"  # not given up yet
    assert message is not None and message.startswith("host unreachable, retrying: ")
    node.context.drivers.clear()  # the host is back: the next use reconnects
    queue = node.nimbo.queue.queue("host-a")
    scheduled = queue.scheduled_job_registry.get_job_ids()
    assert len(scheduled) == 1
    job = queue.fetch_job(scheduled[0])
    assert job is not None
    queue.enqueue_job(job)  # what RQ's scheduler does when the retry is due
    node.run_jobs()
    assert state(node, location) == ("suspended", None)


# --- the queue is down ----------------------------------------------------------------------


def _dead_queue_node(make_node: NodeFactory) -> Node:
    node = make_node(MEMORY_HOST)
    dead = f"unix://{node.tmp_path / 'no-redis-here.sock'}"
    return make_node(MEMORY_HOST, redis=dead, image=False)


def _counts(node: Node) -> tuple[int, int, int]:
    with node.store.session() as session:
        return tuple(int(session.scalar(select(func.count()).select_from(t)) or 0)
                     for t in (EntityRow, EntityMixin, Operation))  # type: ignore[return-value]


@pytest.mark.parametrize("accept", ["text/plain", "application/occi+json"])
def test_create_with_the_queue_down_is_503_and_leaves_nothing(make_node: NodeFactory,
                                                              accept: str) -> None:
    node = _dead_queue_node(make_node)
    body = text_plain(["compute; scheme=\"http://schemas.ogf.org/occi/infrastructure#\"; "
                       "class=\"kind\"",
                       "debian12; scheme=\"http://schemas.nimbostratus.org/occi/os_tpl#\"; "
                       "class=\"mixin\""])

    response = node.post_text("/compute/", body, headers={"Accept": accept})

    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert "job queue unavailable" in response.get_data(as_text=True)
    assert _counts(node) == (0, 0, 0)
    storage = node.post_text("/storage/", text_plain(
        ["storage; scheme=\"http://schemas.ogf.org/occi/infrastructure#\"; class=\"kind\""],
        {"occi.storage.size": 1.0}))
    assert storage.status_code == 503
    assert _counts(node) == (0, 0, 0)


def test_action_and_delete_with_the_queue_down_leave_the_entity_usable(
        make_node: NodeFactory) -> None:
    live = make_node(MEMORY_HOST)
    location = live.create_compute()
    live.run_jobs()
    dead = make_node(MEMORY_HOST, redis=f"unix://{live.tmp_path / 'gone.sock'}", image=False)

    stop = dead.action(location, "stop")
    delete = dead.request("DELETE", location)

    assert stop.status_code == delete.status_code == 503
    assert "Retry-After" in stop.headers
    assert dead.get(location).status_code == 200  # not hidden as deleting
    status, message = state(dead, location)
    assert status == "active"
    assert message == "job queue unavailable; retry the request"
    with dead.store.session() as session:
        failed = session.scalars(select(Operation.verb).where(
            Operation.entity_id == entity_id(location), Operation.status == "failed")).all()
    assert sorted(failed) == ["delete", "stop"]
    # with the queue back, the same request works
    assert live.action(location, "stop").status_code == 200
    live.run_jobs()
    assert state(live, location) == ("inactive", None)


def test_compute_delete_refused_by_the_queue_keeps_its_links(make_node: NodeFactory) -> None:
    live = make_node(MEMORY_HOST)
    storage = live.create_storage()
    live.run_jobs()
    link = (f'<{path_of(storage)}>; rel="{INFRA}storage"; category="{INFRA}storagelink"')
    compute = live.create_compute(links=[link])
    live.run_jobs()
    link_id = live.get_json(compute)["links"][0]["id"].removeprefix("urn:uuid:")
    dead = make_node(MEMORY_HOST, redis=f"unix://{live.tmp_path / 'gone.sock'}", image=False)

    assert dead.request("DELETE", compute).status_code == 503

    assert [x["id"] for x in live.get_json(compute)["links"]] == [f"urn:uuid:{link_id}"]
    assert live.get(f"/storagelink/{link_id}").status_code == 200
    refused = live.request("DELETE", storage)  # still attached: must stay protected
    assert refused.status_code == 409
    assert live.request("DELETE", compute).status_code == 200
    live.run_jobs()
    assert live.row(f"/storagelink/{link_id}") is None
    assert live.request("DELETE", storage).status_code == 200


def test_failed_provision_is_an_error_naming_the_cause(make_node: NodeFactory) -> None:
    # a host told to bridge new networks but given no device to bridge to
    node = make_node(MEMORY_HOST, network_mode="bridge")
    network = node.create_network()
    node.run_jobs()

    status, message = state(node, network)
    assert status == "error"
    assert message == (f"provision failed: network {entity_id(network)}: mode 'bridge' "
                       "needs a bridge_device")
    nic = f'<{path_of(network)}>; rel="{INFRA}network"; category="{INFRA}networkinterface"'
    compute = node.create_compute(links=[nic])
    node.run_jobs()
    status, message = state(node, compute)
    assert status == "error"
    assert message is not None and "needs a bridge_device" in message
    assert failed_jobs(node) == []
    # the failed compute can still be deleted, and nothing is left on the host
    assert node.request("DELETE", compute).status_code == 200
    node.run_jobs()
    assert computes(node) == [] and node.driver().list_volumes() == []


def test_create_with_inline_links_refused_by_the_queue_leaves_nothing(
        make_node: NodeFactory) -> None:
    live = make_node(MEMORY_HOST)
    storage, network = live.create_storage(), live.create_network()
    live.run_jobs()
    before = _counts(live)
    dead = make_node(MEMORY_HOST, redis=f"unix://{live.tmp_path / 'gone.sock'}", image=False)
    links = [f'<{path_of(storage)}>; rel="{INFRA}storage"; category="{INFRA}storagelink"',
             f'<{path_of(network)}>; rel="{INFRA}network"; category="{INFRA}networkinterface"']
    body = text_plain(["compute; scheme=\"http://schemas.ogf.org/occi/infrastructure#\"; "
                       "class=\"kind\"",
                       "debian12; scheme=\"http://schemas.nimbostratus.org/occi/os_tpl#\"; "
                       "class=\"mixin\""], links=links)

    response = dead.post_text("/compute/", body)

    assert response.status_code == 503
    assert _counts(live) == before
    assert live.request("DELETE", storage).status_code == 200  # not held by a ghost link


def test_the_worker_makes_the_console_directory_qemu_needs(make_node: NodeFactory) -> None:
    node = make_node(MEMORY_HOST)
    consoles = node.config.data_path / "consoles"
    assert not consoles.exists()
    node.driver()
    assert consoles.is_dir()  # QEMU refuses to start a domain whose serial log it cannot open


def test_a_root_disk_is_never_smaller_than_its_image(make_node: NodeFactory) -> None:
    node = make_node(MEMORY_HOST)
    image = node.tmp_path / "big.qcow2"
    virtual = 3 * 1024**3  # a sparse qcow2: small file, 3 GiB disk
    image.write_bytes(b"QFI\xfb" + bytes(20) + virtual.to_bytes(8, "big") + bytes(480))
    register_image(node.store, "big", str(image))
    location = node.create("compute", text_plain([
        f'compute; scheme="{INFRA}"; class="kind"',
        'big; scheme="http://schemas.nimbostratus.org/occi/os_tpl#"; class="mixin"']))
    node.run_jobs()
    root = node.driver().volume_info(jobs.root_volume_id(entity_id(location)))
    assert root.capacity_bytes == virtual
