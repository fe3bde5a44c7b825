"""Enqueueing jobs on RQ: one queue per hypervisor host, ids only, explicit options."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
from rq import Queue, Retry

from gateway.config import Config
from gateway.errors import ServiceUnavailable

GENERAL_QUEUE = "nimbo.general"


def host_queue_name(host: str) -> str:
    return f"nimbo.host.{host}"


@contextmanager
def redis_errors() -> Iterator[None]:
    """Translate redis-py errors at the boundary."""
    try:
        yield
    except redis.RedisError as exc:
        raise ServiceUnavailable(f"job queue unavailable: {exc}") from exc


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


class JobQueue:
    """Puts jobs on the queue of the host that must run them."""

    def __init__(self, connection: redis.Redis, config: Config) -> None:
        self.connection = connection
        self._config = config
        self._queues: dict[str, Queue] = {}

    def queue(self, host: str | None) -> Queue:
        name = host_queue_name(host) if host else GENERAL_QUEUE
        if name not in self._queues:
            self._queues[name] = Queue(name, connection=self.connection)
        return self._queues[name]

    def enqueue(
        self, host: str | None, job: Callable[..., Any], entity_id: str, operation_id: str
    ) -> None:
        """Enqueue ``job(entity_id, operation_id)``; the RQ job id is the operation id, so
        enqueueing the same operation twice leaves one job."""
        retries = self._config.job_retries
        with redis_errors():
            self.queue(host).enqueue_call(
                job,
                args=(entity_id, operation_id),
                timeout=self._config.job_timeout,
                result_ttl=self._config.job_result_ttl,
                failure_ttl=86400,
                job_id=f"op-{operation_id}",
                retry=Retry(max=retries, interval=[2, 10, 30][:retries] or [2])
                if retries
                else None,
                description=f"{job.__name__}({entity_id})",
            )

    def ping(self) -> None:
        with redis_errors():
            self.connection.ping()
