"""CDMI I/O of a real ``nimbo up``: one big value by plain HTTP against ``cat``, small CDMI
objects from concurrent clients, and the API workers' memory during the big transfer.

    .venv/bin/python benchmarks/cdmi_io.py [--size-mib N] [--ops N] [--concurrency C] [--quick]

Starts a throwaway node like ``benchmarks/occi_api.py`` (temporary data dir, in-memory
``memory://`` host, gunicorn with the production settings), then:

1. PUTs and GETs one ``--size-mib`` object by plain HTTP (streamed from and to files), each
   printed beside ``cat src > dst`` of the same file on the same filesystem, with the ratio
   nimbo/cat, the sha256 round trip, and a CDMI JSON read of a 4 MiB object;
2. drives ``--concurrency`` keep-alive clients, each doing CDMI create + read pairs of 4 KiB
   text objects, and prints pairs/s and requests/s;
3. samples the RSS of the gunicorn workers (and the node's whole process tree) every 50 ms
   from ``/proc`` during the big PUT and GET and prints the peaks.

Nothing is asserted. Everything started is stopped and the temporary directory removed, also
on errors. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import http.client
import importlib
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from occi_api import (
    API_WORKERS,
    HOST,
    MEMORY_URI,
    Call,
    Node,
    Processes,
    Reply,
    _descendants,
    run_benchmark,
    send,
    start_gunicorn,
    start_node,
    stop_process,
)

CDMI_VERSION = "1.1.1"
VERSION_HEADER = "X-CDMI-Specification-Version"
CONTAINER = "application/cdmi-container"
OBJECT = "application/cdmi-object"
OCTETS = "application/octet-stream"
BLOCK = 1 << 20  # client read/write block of the big transfer
SAMPLE_INTERVAL = 0.05
SMALL_VALUE_CHARS = 4096
JSON_READ_MIB = 4
JSON_READS = 5
TRANSFER_TIMEOUT = 900.0
TARGET_RATIO = 0.7
TARGET_OPS = 1500.0
TARGET_RSS_MB = 100.0
MB = 1_000_000
MIB = 1 << 20



# --- small helpers ------------------------------------------------------------------------


def cdmi_headers(node: Node, **extra: str) -> dict[str, str]:
    return {**node.headers, VERSION_HEADER: CDMI_VERSION, **extra}


def connect(node: Node, timeout: float = 60.0) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(HOST, node.port, timeout=timeout, blocksize=BLOCK)


def describe(call: Call, reply: Reply) -> str:
    """The request line and the reply, for a failure report."""
    body = reply.body[:600].decode("utf-8", "replace")
    return f"{call.method} {call.path} -> {reply.status} {body!r}"


def expect(conn: http.client.HTTPConnection, call: Call) -> Reply:
    reply = send(conn, call)
    if reply.status != call.expect:
        raise RuntimeError(f"unexpected reply: {describe(call, reply)}")
    return reply


def percentile_ms(values: list[float], p: float) -> float:
    """Nearest-rank percentile in milliseconds."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1] * 1000


def verdict(met: bool) -> str:
    return "PASS" if met else "MISS"


def mib_s(size: int, seconds: float) -> float:
    return size / MIB / seconds if seconds > 0 else math.nan


# --- the node's processes and their memory ------------------------------------------------


def _status_kib(pid: int, keys: tuple[str, ...]) -> dict[str, int]:
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in keys:
                values[name] = int(rest.split()[0])
    return values


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def node_tree(up_pid: int) -> list[int]:
    return [up_pid, *_descendants(up_pid)]


def gunicorn_workers(up_pid: int) -> list[int]:
    """The gunicorn worker processes: children of the gunicorn master below ``nimbo up``."""
    tree = node_tree(up_pid)
    masters = {
        p for p in tree if "gunicorn" in _cmdline(p) and "gunicorn" not in _cmdline(_parent(p))
    }
    return sorted(p for p in tree if _parent(p) in masters)


def tree_cpu(up_pid: int) -> float:
    return sum(_cpu_seconds(p) for p in node_tree(up_pid))


@dataclass
class MemoryPeaks:
    """Peaks over the samples of one phase, in kB as /proc gives them."""

    rss: dict[int, int] = field(default_factory=dict)  # worker pid -> peak VmRSS
    anon: dict[int, int] = field(default_factory=dict)  # worker pid -> peak RssAnon
    tree: int = 0  # peak of the sum of VmRSS over the node's whole process tree
    samples: int = 0


class RssSampler:
    """Samples the node's processes every ``SAMPLE_INTERVAL`` on a thread until stopped."""

    def __init__(self, up_pid: int) -> None:
        self.up_pid = up_pid
        self.peaks = MemoryPeaks()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        tree = node_tree(self.up_pid)
        workers = set(gunicorn_workers(self.up_pid))
        total = 0
        for pid in tree:
            kib = _status_kib(pid, ("VmRSS", "RssAnon"))
            total += kib.get("VmRSS", 0)
            if pid in workers:
                peaks = self.peaks
                peaks.rss[pid] = max(peaks.rss.get(pid, 0), kib.get("VmRSS", 0))
                peaks.anon[pid] = max(peaks.anon.get(pid, 0), kib.get("RssAnon", 0))
        self.peaks.tree = max(self.peaks.tree, total)
        self.peaks.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_INTERVAL)

    def __enter__(self) -> RssSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


# --- part 1: one big value ----------------------------------------------------------------


def make_source(path: Path, size: int) -> str:
    """``size`` random bytes (incompressible) into ``path``; returns their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        left = size
        while left:
            block = os.urandom(min(BLOCK, left))
            digest.update(block)
            handle.write(block)
            left -= len(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def settle() -> None:
    """Write back every dirty page first, off the clock, so that no phase pays for the
    previous one's writes."""
    subprocess.run(["sync"], check=True)


def time_cat(src: Path, dst: Path, *, fsync: bool) -> float:
    dst.unlink(missing_ok=True)
    settle()
    script = 'cat "$1" > "$2"' + (' && sync "$2"' if fsync else "")
    began = time.monotonic()
    subprocess.run(["sh", "-c", script, "sh", str(src), str(dst)], check=True)
    elapsed = time.monotonic() - began
    dst.unlink()
    return elapsed


@dataclass
class Transfer:
    seconds: float
    status: int
    detail: str  # the reply's body on failure
    server_cpu: float
    peaks: MemoryPeaks


def put_big(node: Node, up_pid: int, path: str, src: Path, size: int) -> Transfer:
    settle()
    conn = connect(node, TRANSFER_TIMEOUT)
    headers = {**node.headers, "Content-Type": OCTETS, "Content-Length": str(size)}
    cpu = tree_cpu(up_pid)
    try:
        with RssSampler(up_pid) as sampler, src.open("rb") as body:
            began = time.monotonic()
            conn.request("PUT", path, body=body, headers=headers)
            response = conn.getresponse()
            detail = response.read()
            elapsed = time.monotonic() - began
    finally:
        conn.close()
    return Transfer(
        elapsed,
        response.status,
        "" if response.status in (200, 201, 204) else detail[:600].decode("utf-8", "replace"),
        tree_cpu(up_pid) - cpu,
        sampler.peaks,
    )


def get_big(node: Node, up_pid: int, path: str, dst: Path) -> tuple[Transfer, int]:
    """Streams the value into ``dst``; returns the transfer and the bytes received."""
    dst.unlink(missing_ok=True)
    settle()
    conn = connect(node, TRANSFER_TIMEOUT)
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    received = 0
    cpu = tree_cpu(up_pid)
    try:
        with RssSampler(up_pid) as sampler, dst.open("wb") as out:
            began = time.monotonic()
            conn.request("GET", path, headers=node.headers)
            response = conn.getresponse()
            detail = b""
            if response.status == 200:
                while count := response.readinto(view):
                    out.write(view[:count])
                    received += count
            else:
                detail = response.read()
            elapsed = time.monotonic() - began
    finally:
        conn.close()
    return (
        Transfer(
            elapsed,
            response.status,
            detail[:600].decode("utf-8", "replace"),
            tree_cpu(up_pid) - cpu,
            sampler.peaks,
        ),
        received,
    )


@dataclass
class JsonRead:
    seconds: list[float]
    body_bytes: int
    encoding: str
    intact: bool


def json_read(node: Node, path: str, tmp: Path) -> JsonRead:
    """A ``JSON_READ_MIB`` MiB value PUT by plain HTTP, then read ``JSON_READS`` times as a
    CDMI object (``application/cdmi-object``: the value inside the JSON document)."""
    data = os.urandom(JSON_READ_MIB * MIB)
    source = tmp / "json-read.bin"
    source.write_bytes(data)
    with contextlib.closing(connect(node)) as conn:
        expect(conn, Call("PUT", path, {**node.headers, "Content-Type": OCTETS}, data, 201))
        call = Call("GET", path, cdmi_headers(node, Accept=OBJECT))
        times, replies = [], []
        for _ in range(JSON_READS):
            began = time.monotonic()
            reply = expect(conn, call)
            times.append(time.monotonic() - began)
            replies.append(reply)
    source.unlink()
    document = json.loads(replies[-1].body)
    encoding = document.get("valuetransferencoding", "?")
    value = document.get("value", "")
    decoded = base64.b64decode(value) if encoding == "base64" else value.encode()
    return JsonRead(times, len(replies[-1].body), encoding, decoded == data)


# --- part 2: small CDMI objects -----------------------------------------------------------


def small_value(n: int) -> str:
    stem = f"object {n:010d} "
    filler = "The quick brown fox jumps over the lazy dog. "
    text = stem + filler * (SMALL_VALUE_CHARS // len(filler) + 1)
    return text[:SMALL_VALUE_CHARS]


@dataclass
class ClientResult:
    create: list[float] = field(default_factory=list)
    read: list[float] = field(default_factory=list)
    pairs: int = 0
    errors: int = 0
    first_error: str = ""
    start: float = math.inf
    end: float = 0.0
    cpu: float = 0.0


def _one_pair(
    conn: http.client.HTTPConnection,
    node: Node,
    name: str,
    n: int,
    result: ClientResult,
    create_too: bool,
) -> None:
    """Create then read object ``name`` (or only read it); counts a pair if all went well."""
    value = small_value(n)
    path = f"/cdmi/bench/small/{name}"
    create = Call(
        "PUT",
        path,
        cdmi_headers(node, **{"Content-Type": OBJECT, "Accept": OBJECT}),
        json.dumps({"value": value}).encode(),
        201,
    )
    read = Call("GET", path, cdmi_headers(node, Accept=OBJECT))
    steps = [(create, result.create)] if create_too else []
    for call, latencies in [*steps, (read, result.read)]:
        began = time.monotonic()
        try:
            reply = send(conn, call)
        except (OSError, http.client.HTTPException) as exc:
            problem = f"{call.method} {call.path} -> {exc!r}"
        else:
            finished = time.monotonic()
            problem = ""
            if reply.status != call.expect:
                problem = describe(call, reply)
            elif call is read:
                try:
                    got = json.loads(reply.body).get("value")
                except ValueError:
                    got = None
                if got != value:
                    problem = f"{describe(call, reply)} (value differs from what was PUT)"
            if not problem:
                latencies.append(finished - began)
                continue
        result.errors += 1
        result.first_error = result.first_error or problem
        return
    result.pairs += 1


def _small_client(
    node: Node,
    client: int,
    indices: list[int],
    warmup: int,
    barrier: threading.Barrier,
    results: mp.Queue[ClientResult],
    create_too: bool,
) -> None:
    """One client process: one keep-alive connection, create + read pairs (or reads) one
    after another."""
    result = ClientResult()
    conn = connect(node)
    try:
        scratch = ClientResult()
        for i in range(warmup):
            _one_pair(conn, node, f"warm-{client}-{i}", -1 - i, scratch, create_too)
        barrier.wait()
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        result.start = time.monotonic()
        for n in indices:
            _one_pair(conn, node, str(n), n, result, create_too)
        result.end = time.monotonic()
        done = resource.getrusage(resource.RUSAGE_SELF)
        result.cpu = done.ru_utime + done.ru_stime - cpu.ru_utime - cpu.ru_stime
        if scratch.errors:
            result.errors += scratch.errors
            result.first_error = result.first_error or f"(warm-up) {scratch.first_error}"
    finally:
        conn.close()
        results.put(result)


@dataclass
class SmallRun:
    results: list[ClientResult]
    server_cpu: float

    @property
    def elapsed(self) -> float:
        started = [r for r in self.results if r.end]
        if not started:
            return 0.0
        return max(r.end for r in started) - min(r.start for r in started)

    @property
    def pairs(self) -> int:
        return sum(r.pairs for r in self.results)

    @property
    def requests(self) -> int:
        return sum(len(r.create) + len(r.read) for r in self.results)


def small_objects(
    node: Node, up_pid: int, ops: int, concurrency: int, warmup: int, *, create_too: bool = True
) -> SmallRun:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(concurrency, timeout=300)
    results: mp.Queue[ClientResult] = ctx.Queue()
    indices = list(range(ops))
    clients = [
        ctx.Process(
            target=_small_client,
            args=(node, c, indices[c::concurrency], warmup, barrier, results, create_too),
        )
        for c in range(concurrency)
    ]
    cpu = tree_cpu(up_pid)
    for client in clients:
        client.start()
    gathered: list[ClientResult] = []
    try:
        for _ in clients:
            gathered.append(results.get(timeout=TRANSFER_TIMEOUT))
    finally:
        for client in clients:
            client.join(timeout=10)
            if client.is_alive():
                client.kill()
    return SmallRun(gathered, tree_cpu(up_pid) - cpu)


# --- report -------------------------------------------------------------------------------


def print_setup(args: argparse.Namespace, tmp: Path) -> None:
    conf = importlib.import_module("gateway.gunicorn_conf")
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, load average "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    print(
        f"server: `nimbo up` (NIMBO_API_WORKERS={API_WORKERS}, {MEMORY_URI}), gunicorn "
        f"worker_class={conf.worker_class}, threads={conf.threads}, keepalive={conf.keepalive}s,"
        f" access log on; blob store and cat files under {tmp} (one filesystem)"
    )
    print(
        f"client: the same {os.cpu_count()} cores as the server (its gunicorn workers, redis "
        f"and the rq worker); small objects from {args.concurrency} client processes (one "
        f"keep-alive http.client connection each, processes so that the GIL does not limit "
        f"the client), so every CPU second the client spends is taken from the server"
    )


def print_memory(idle: MemoryPeaks, put: MemoryPeaks, get: MemoryPeaks) -> None:
    print(
        f"  {'gunicorn worker':<16} {'idle MB':>8} {'peak PUT MB':>12} {'peak GET MB':>12} "
        f"{'anon PUT MB':>12} {'anon GET MB':>12}  target < {TARGET_RSS_MB:.0f} MB"
    )
    worst = 0
    for pid in sorted(set(idle.rss) | set(put.rss) | set(get.rss)):
        peak = max(put.rss.get(pid, 0), get.rss.get(pid, 0))
        worst = max(worst, peak)
        print(
            f"  pid {pid:<12} {idle.rss.get(pid, 0) * 1024 / MB:>8.1f} "
            f"{put.rss.get(pid, 0) * 1024 / MB:>12.1f} {get.rss.get(pid, 0) * 1024 / MB:>12.1f} "
            f"{put.anon.get(pid, 0) * 1024 / MB:>12.1f} {get.anon.get(pid, 0) * 1024 / MB:>12.1f}"
            f"  {verdict(peak * 1024 / MB < TARGET_RSS_MB)}"
        )
    print(
        f"  node process tree (nimbo up, redis, rq worker, gunicorn master and workers), sum of "
        f"VmRSS: idle {idle.tree * 1024 / MB:.1f} MB, peak PUT {put.tree * 1024 / MB:.1f} MB, "
        f"peak GET {get.tree * 1024 / MB:.1f} MB ({put.samples} + {get.samples} samples every "
        f"{SAMPLE_INTERVAL * 1000:.0f} ms; MB = 10^6 bytes; anon = RssAnon, the part not backed "
        f"by files)"
    )


def server_log_report(log: Path) -> None:
    lines = log.read_text(errors="replace").splitlines()
    big = [line for line in lines if "/cdmi/bench/big.bin" in line and '"' in line]
    for line in big:
        print(f"  access log: {line.strip()}")
    bad = [
        line
        for line in lines
        if "Traceback" in line
        or " ERROR " in line
        or "WARNING" in line
        or "[CRITICAL]" in line
        or "WORKER TIMEOUT" in line
        or '" 5' in line
    ]
    if bad:
        print(f"  ! server log: {len(bad)} error/warning lines; the first ones:")
        for line in bad[:20]:
            print(f"    {line.strip()[:300]}")
    else:
        print("  server log: no errors, warnings, tracebacks or 5xx replies")


def _merged(peaks: list[MemoryPeaks]) -> MemoryPeaks:
    merged = MemoryPeaks()
    for one in peaks:
        for pid, kib in one.rss.items():
            merged.rss[pid] = max(merged.rss.get(pid, 0), kib)
        for pid, kib in one.anon.items():
            merged.anon[pid] = max(merged.anon.get(pid, 0), kib)
        merged.tree = max(merged.tree, one.tree)
        merged.samples += one.samples
    return merged


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@dataclass
class Server:
    """Where a big transfer goes: nimbo, or the bare gunicorn app of :func:`bare_app`."""

    node: Node
    pid: int  # the process whose tree is charged with the server CPU
    path: str


@dataclass
class BigRound:
    put: Transfer
    get: Transfer | None
    bare_put: Transfer
    bare_get: Transfer | None
    cat_put: float
    cat_sync: float
    cat_get: float
    intact: bool


def big_round(nimbo: Server, bare: Server, tmp: Path, size: int, digest: str) -> BigRound:
    """cat, cat+sync, PUT to nimbo, PUT to bare; cat, GET from nimbo, GET from bare: each
    after a sync, cat next to the transfers it is compared with so that all see the same
    state of the machine."""
    src, dst, got = tmp / "src.bin", tmp / "cat-dst.bin", tmp / "get-dst.bin"
    cat_put = time_cat(src, dst, fsync=False)
    cat_sync = time_cat(src, dst, fsync=True)
    put = put_big(nimbo.node, nimbo.pid, nimbo.path, src, size)
    bare_put = put_big(bare.node, bare.pid, bare.path, src, size)
    cat_get = time_cat(src, dst, fsync=False)
    get = bare_get = None
    intact = False
    if put.status in (200, 201, 204):
        get, received = get_big(nimbo.node, nimbo.pid, nimbo.path, got)
        intact = get.status == 200 and received == size and sha256_of(got) == digest
        got.unlink()
    if bare_put.status == 201:
        bare_get, _ = get_big(bare.node, bare.pid, bare.path, got)
        got.unlink()
    return BigRound(put, get, bare_put, bare_get, cat_put, cat_sync, cat_get, intact)


def _round_line(label: str, one: BigRound) -> str:
    line = (
        f"{label}: PUT nimbo {one.put.seconds:.2f} s ({one.put.status}), bare "
        f"{one.bare_put.seconds:.2f} s, cat {one.cat_put:.2f} s, cat+sync {one.cat_sync:.2f} s"
    )
    if one.get is None or one.bare_get is None:
        return line
    return (
        f"{line} | GET nimbo {one.get.seconds:.2f} s ({one.get.status}), bare "
        f"{one.bare_get.seconds:.2f} s, cat {one.cat_get:.2f} s | nimbo round trip sha256 "
        f"{'identical' if one.intact else 'DIFFERENT'}"
    )


def part_big(args: argparse.Namespace, nimbo: Server, bare: Server, tmp: Path) -> list[BigRound]:
    """The rounds run, the warm-up first (all of them count for the memory peaks)."""
    size = args.size_mib * MIB
    print(
        f"\n== 1. one {args.size_mib} MiB object by plain HTTP (PUT {nimbo.path}, {OCTETS}; "
        f"GET), against cat: 1 warm-up round, then {args.rounds} ==",
        flush=True,
    )
    began = time.monotonic()
    digest = make_source(tmp / "src.bin", size)
    print(
        f"source: {size} random bytes, sha256 {digest[:16]}..., written in "
        f"{time.monotonic() - began:.1f}s",
        flush=True,
    )
    everything: list[BigRound] = []
    for number in range(args.rounds + 1):
        one = big_round(nimbo, bare, tmp, size, digest)
        everything.append(one)
        label = "warm-up (not counted)" if number == 0 else f"round {number}"
        print(_round_line(label, one), flush=True)
        for name, transfer, ok in (
            (f"PUT {nimbo.path}", one.put, (200, 201, 204)),
            (f"GET {nimbo.path}", one.get, (200,)),
            ("bare PUT", one.bare_put, (201,)),
            ("bare GET", one.bare_get, (200,)),
        ):
            if transfer is not None and transfer.status not in ok:
                print(f"! {name} answered {transfer.status}: {transfer.detail!r}")
                return everything
    (tmp / "src.bin").unlink()
    rounds = everything[1:]
    table: list[tuple[str, list[Transfer], list[Transfer], list[float]]] = [
        (
            "PUT",
            [r.put for r in rounds],
            [r.bare_put for r in rounds],
            [r.cat_put for r in rounds],
        ),
        (
            "GET",
            [r.get for r in rounds if r.get is not None],
            [r.bare_get for r in rounds if r.bare_get is not None],
            [r.cat_get for r in rounds],
        ),
    ]
    print(
        f"\nmedian of {args.rounds:<3} {'nimbo s':>8} {'MiB/s':>6} {'bare s':>7} {'MiB/s':>6} "
        f"{'cat s':>6} {'MiB/s':>6} | {'nimbo/cat':>9} {'best/best':>9} {'bare/cat':>8} "
        f"{'nimbo/bare':>10} | {'nimbo CPU s':>11}  target nimbo/cat >= {TARGET_RATIO}"
    )
    for title, mine, bares, cats in table:
        n, b, c = (
            median([t.seconds for t in mine]),
            median([t.seconds for t in bares]),
            median(cats),
        )
        best = min(cats) / min(t.seconds for t in mine)
        cpu = median([t.server_cpu for t in mine])
        print(
            f"{title:<12} {n:>8.2f} {mib_s(size, n):>6.0f} {b:>7.2f} {mib_s(size, b):>6.0f} "
            f"{c:>6.2f} {mib_s(size, c):>6.0f} | {c / n:>9.2f} {best:>9.2f} {c / b:>8.2f} "
            f"{b / n:>10.2f} | {cpu:>11.2f}  {verdict(c / n >= TARGET_RATIO)}"
        )
    put_s, sync_s = median([r.put.seconds for r in rounds]), median([r.cat_sync for r in rounds])
    print(
        f"PUT against `cat src > dst && sync dst` ({sync_s:.2f} s, {mib_s(size, sync_s):.0f} "
        f"MiB/s; nimbo fsyncs the value before it answers, plain cat does not): "
        f"nimbo/cat+sync = {sync_s / put_s:.2f}"
    )
    intact = sum(r.intact for r in rounds)
    print(
        f"round trip: {intact} of {len(rounds)} nimbo GETs returned the {size} bytes PUT, "
        f"sha256 {'identical' if intact == len(rounds) else 'NOT identical'}"
    )
    print(
        "(x/cat = cat seconds / x seconds, > 1 is faster than cat; best/best = nimbo/cat on the "
        "fastest round of each; bare = a 30-line WSGI app under the same gunicorn settings "
        "that writes the body to a file in 1 MiB chunks, fsyncs and renames it, and serves it "
        "back in 1 MiB preads: the ceiling of gunicorn + http.client over loopback here; "
        "nimbo CPU = user+system seconds of nimbo's process tree meanwhile; all files on one "
        "filesystem, page cache warm, dirty pages written back before each timing; the first "
        "PUT creates (201), the later ones replace (204))"
    )

    reads = json_read(nimbo.node, "/cdmi/bench/json-4mib.bin", tmp)
    middle = median(reads.seconds)
    print(
        f"CDMI JSON read of a {JSON_READ_MIB} MiB object (GET, Accept: {OBJECT}, "
        f"{reads.encoding} value, {reads.body_bytes} bytes of JSON), {JSON_READS} reads: "
        f"median {middle * 1000:.0f} ms ({mib_s(JSON_READ_MIB * MIB, middle):.0f} MiB/s of "
        f"value), min {min(reads.seconds) * 1000:.0f} ms, max {max(reads.seconds) * 1000:.0f} "
        f"ms; value {'intact' if reads.intact else 'DIFFERENT'} after decoding"
    )
    return everything


# --- the bare baseline of part 1 ----------------------------------------------------------


def bare_app(environ: dict[str, Any], start_response: Callable[..., object]) -> Iterable[bytes]:
    """WSGI app of the baseline: PUT stores the body as one file (1 MiB reads, pwrite, fsync,
    rename), GET serves it back in 1 MiB preads; no auth, no database. Started by gunicorn
    from this module (``cdmi_io:bare_app``); the directory is ``$NIMBO_BENCH_BARE_DIR``."""
    store = Path(os.environ["NIMBO_BENCH_BARE_DIR"])
    final, temp = store / "value", store / "value.tmp"
    if environ["REQUEST_METHOD"] == "PUT":
        stream = environ["wsgi.input"]
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            position = 0
            while chunk := stream.read(BLOCK):
                _pwrite(fd, memoryview(chunk), position)
                position += len(chunk)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, final)
        start_response("201 Created", [("Content-Length", "0")])
        return [b""]
    if not final.exists():
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    fd = os.open(final, os.O_RDONLY)
    size = os.fstat(fd).st_size

    def chunks() -> Iterator[bytes]:
        try:
            position = 0
            while position < size:
                data = os.pread(fd, BLOCK, position)
                if not data:
                    return
                position += len(data)
                yield data
        finally:
            os.close(fd)

    start_response("200 OK", [("Content-Length", str(size)), ("Content-Type", OCTETS)])
    return chunks()


def _pwrite(fd: int, data: memoryview, offset: int) -> None:
    while len(data):
        written = os.pwrite(fd, data, offset)
        data, offset = data[written:], offset + written


def start_bare(tmp: Path, processes: Processes) -> Server:
    store = tmp / "bare"
    store.mkdir()
    port, process = start_gunicorn(
        "cdmi_io:bare_app",
        {**os.environ, "NIMBO_BENCH_BARE_DIR": str(store)},
        tmp / "bare.log",
        Call("GET", "/value", {}, expect=404),
        processes,
    )
    return Server(Node(port, store, {}), process.pid, "/value")


def part_small(args: argparse.Namespace, node: Node, up_pid: int) -> None:
    print(
        f"\n== 3. small CDMI objects: {args.ops} create + read pairs of {SMALL_VALUE_CHARS} "
        f"characters of text, {args.concurrency} clients ==",
        flush=True,
    )
    run = small_objects(node, up_pid, args.ops, args.concurrency, args.warmup)
    elapsed = run.elapsed
    creates = [x for r in run.results for x in r.create]
    reads = [x for r in run.results for x in r.read]
    pairs_s = run.pairs / elapsed if elapsed else math.nan
    requests_s = run.requests / elapsed if elapsed else math.nan
    client_cpu = sum(r.cpu for r in run.results)
    print(
        f"{run.pairs} pairs ({run.requests} requests) in {elapsed:.2f} s after "
        f"{args.warmup} warm-up pairs per client"
    )
    print(
        f"  ops/s, one op = one create + one read:  {pairs_s:>7.0f}   target >= "
        f"{TARGET_OPS:.0f}: {verdict(pairs_s >= TARGET_OPS)}"
    )
    print(
        f"  requests/s, one op = one request:       {requests_s:>7.0f}   target >= "
        f"{TARGET_OPS:.0f}: {verdict(requests_s >= TARGET_OPS)}"
    )
    print(
        f"  latency create (PUT, 201) p50 {percentile_ms(creates, 50):.1f} ms, p99 "
        f"{percentile_ms(creates, 99):.1f} ms; read (GET, 200) p50 "
        f"{percentile_ms(reads, 50):.1f} ms, p99 {percentile_ms(reads, 99):.1f} ms"
    )
    per_pair = 1e6 / run.pairs if run.pairs else math.nan
    print(
        f"  CPU while measuring: server tree {run.server_cpu:.2f} s "
        f"({run.server_cpu * per_pair:.0f} us per pair), clients {client_cpu:.2f} s "
        f"({client_cpu * per_pair:.0f} us per pair), of {elapsed * (os.cpu_count() or 1):.2f} "
        f"core-seconds available"
    )
    _failures(run, "pairs")

    # For information: the same objects read again, no creates, to show which half costs.
    again = small_objects(node, up_pid, args.ops, args.concurrency, args.warmup, create_too=False)
    seconds = again.elapsed
    print(
        f"for information, the {args.ops} objects read again, no creates, same clients: "
        f"{again.pairs / seconds if seconds else math.nan:.0f} reads/s, p50 "
        f"{percentile_ms([x for r in again.results for x in r.read], 50):.1f} ms, p99 "
        f"{percentile_ms([x for r in again.results for x in r.read], 99):.1f} ms, server CPU "
        f"{again.server_cpu * 1e6 / again.pairs if again.pairs else math.nan:.0f} us per read"
    )
    _failures(again, "reads")


def _failures(run: SmallRun, what: str) -> None:
    errors = sum(r.errors for r in run.results)
    if errors:
        first = next(r.first_error for r in run.results if r.first_error)
        print(f"  ! {errors} failed {what}; first: {first}")


def benchmark(args: argparse.Namespace, tmp: Path, processes: Processes) -> None:
    print_setup(args, tmp)
    began = time.monotonic()
    node = start_node(tmp, processes)
    up_pid = processes[0][0].pid
    workers = gunicorn_workers(up_pid)
    print(
        f"nimbo up on {HOST}:{node.port} after {time.monotonic() - began:.1f}s; gunicorn "
        f"workers {workers}",
        flush=True,
    )
    with contextlib.closing(connect(node)) as conn:
        for path in ("/cdmi/bench/", "/cdmi/bench/small/"):
            expect(
                conn,
                Call("PUT", path, cdmi_headers(node, **{"Content-Type": CONTAINER}), b"{}", 201),
            )
    if not args.skip_big:
        idle = RssSampler(up_pid)
        idle.sample()
        bare = start_bare(tmp, processes)
        rounds = part_big(args, Server(node, up_pid, "/cdmi/bench/big.bin"), bare, tmp)
        stop_process(*processes.pop())
        print(
            f"\n== 2. memory of nimbo's gunicorn workers during the {args.size_mib} MiB PUTs "
            f"and GETs (all {len(rounds)} rounds) =="
        )
        print_memory(
            idle.peaks,
            _merged([r.put.peaks for r in rounds]),
            _merged([r.get.peaks for r in rounds if r.get is not None]),
        )
    if not args.skip_small:
        part_small(args, node, up_pid)
    print()
    server_log_report(tmp / "nimbo.log")
    print("load average at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument(
        "--size-mib", type=int, default=None, help="size of the big object (256; quick 32)"
    )
    parser.add_argument(
        "--ops", type=int, default=None, help="small-object create+read pairs (4000; quick 400)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=8, help="small-object client processes (8)"
    )
    parser.add_argument(
        "--warmup", type=int, default=5, help="warm-up pairs per client, not counted (5)"
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="rounds of the big PUT/GET and cat (3; quick 1)"
    )
    parser.add_argument("--skip-big", action="store_true", help="leave out part 1 and 3")
    parser.add_argument("--skip-small", action="store_true", help="leave out part 2")
    parser.add_argument("--quick", action="store_true", help="smoke run: 32 MiB, 400 pairs")
    args = parser.parse_args(argv)
    args.size_mib = args.size_mib or (32 if args.quick else 256)
    args.ops = args.ops or (400 if args.quick else 4000)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if min(args.size_mib, args.ops, args.concurrency, args.rounds) < 1 or args.warmup < 0:
        parser.error("--size-mib, --ops, --concurrency and --rounds must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    return run_benchmark("nimbo-bench-cdmi-", benchmark, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
