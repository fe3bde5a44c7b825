"""Enqueueing jobs on RQ: one queue per hypervisor host, ids only, explicit options."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import redis
from rq import Queue, Retry
from rq.results import Result

from gateway.audit import note_operation
from gateway.config import Config
from gateway.errors import BackendError, ServiceUnavailable

T = TypeVar("T")

GENERAL_QUEUE = "nimbo.general"
CALL_RESULT_TTL = 60
"""Seconds the result of a :meth:`JobQueue.call` stays in Redis: only its caller reads it."""


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
        enqueueing the same operation twice leaves one job.

        One MULTI/EXEC: the queue's registration and the job go in one transaction (RQ on its
        own sends the registration in a round trip of its own first)."""
        note_operation(operation_id)
        retries = self._config.job_retries
        with redis_errors():
            pipe = self.connection.pipeline()
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
                pipeline=pipe,
            )
            pipe.execute()

    def call(self, host: str, job: Callable[..., T], *args: Any, wait: int) -> T:
        """Run ``job(*args)`` on the worker of ``host`` and return what it returns: a quick
        read the API needs from a hypervisor host it cannot reach itself (a console log).

        The job goes to the front of the host's queue (a read changes nothing, so it need not
        wait for the jobs queued before it, only for the one running) and is dropped unless a
        worker starts it within ``wait`` seconds; its result is kept only briefly. Raises
        ServiceUnavailable (retry after ``wait`` seconds) when no result comes within ``wait``
        seconds, and BackendError when the job failed on the worker (its log says why).
        """
        with redis_errors():
            queued = self.queue(host).enqueue_call(
                job,
                args=args,
                timeout=wait,
                ttl=wait,
                result_ttl=CALL_RESULT_TTL,
                failure_ttl=CALL_RESULT_TTL,
                at_front=True,
                description=f"{job.__name__}{args!r}",
            )
            result = queued.latest_result(timeout=wait)
        if result is None:
            raise ServiceUnavailable(
                f"the worker of host {host} did not answer within {wait} s; try again",
                retry_after=wait,
            )
        if result.type is not Result.Type.SUCCESSFUL:
            raise BackendError(f"{job.__name__} failed on the worker of host {host}")
        return cast(T, result.return_value)

    def ping(self) -> None:
        with redis_errors():
            self.connection.ping()
