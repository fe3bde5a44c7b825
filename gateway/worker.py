"""A hypervisor host's worker: registers the host, then runs its queue's jobs."""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime

from rq import SimpleWorker

from backends.registry import open_driver
from gateway.collector import settle
from gateway.config import Config
from gateway.errors import NimboError
from gateway.queue import GENERAL_QUEUE, JobQueue, connect, host_queue_name
from gateway.reconciler import reconcile
from gateway.runtime import WorkerContext, driver_options, install
from gateway.store.db import Store
from gateway.store.models import Host

log = logging.getLogger(__name__)


def register_host(store: Store, config: Config, name: str, uri: str) -> Host:
    """Insert or refresh the host row with its capacity (from config, else from libvirt)."""
    driver = open_driver(uri, **driver_options(config))
    try:
        info = driver.host_info()
    finally:
        driver.close()
    cores = config.host_cores or info.cores
    memory = config.host_memory_mib or info.memory_mib
    with store.session(write=True) as session:
        host = session.get(Host, name)
        if host is None:
            host = Host(name=name, uri=uri, cores=cores, memory_mib=memory)
            session.add(host)
        host.uri, host.cores, host.memory_mib, host.enabled = uri, cores, memory, True
        host.last_seen = datetime.now(UTC)
    log.info("host %s registered: %s, %d cores, %d MiB", name, uri, cores, memory)
    return host


def _reconcile_forever(
    context: WorkerContext, queue: JobQueue, host: str, interval: float, stop: threading.Event
) -> None:
    while not stop.wait(interval):
        try:
            reconcile(context, queue, host)
        except NimboError as exc:
            log.warning("reconciler pass on %s failed: %s", host, exc.message)


def lower_priority(niceness: int) -> int:
    """Make this process at least ``niceness`` nice (never less nice than it is: that would
    need privileges and undo what the operator chose). Returns the niceness now in force."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if niceness > current:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    return os.getpriority(os.PRIO_PROCESS, 0)


def run_worker(config: Config, host: str, uri: str, *, burst: bool = False) -> None:
    lower_priority(config.worker_nice)  # the jobs run in this process (a SimpleWorker)
    store = Store(config.effective_database_url)
    store.create_schema()
    register_host(store, config, host, uri)
    context = WorkerContext(store=store, config=config)
    install(context)
    connection = connect(config.effective_redis_url)
    stop = threading.Event()
    if not burst and config.reconcile_interval > 0:
        threading.Thread(
            target=_reconcile_forever,
            args=(context, JobQueue(connection, config), host, config.reconcile_interval, stop),
            name="reconciler",
            daemon=True,
        ).start()
    worker = SimpleWorker(
        [host_queue_name(host), GENERAL_QUEUE],
        connection=connection,
        name=f"nimbo-{host}-{datetime.now(UTC):%H%M%S%f}",
    )
    settle()
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level=config.log_level)
    finally:
        stop.set()
        context.close()
        install(None)
