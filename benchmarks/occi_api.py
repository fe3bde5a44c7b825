"""OCCI API throughput and latency of a real ``nimbo up``, side by side with a bare Flask app.

    .venv/bin/python benchmarks/occi_api.py [--requests N] [--concurrency C] [--quick]

Starts a throwaway node (temporary data dir, in-memory ``memory://`` host, gunicorn with the
production settings ``python:gateway.gunicorn_conf``), registers an image, creates the computes
to list, captures nimbo's responses and serves the same bytes from ``benchmarks/bare_app.py``
under the same gunicorn settings on another port. Then the same keep-alive client pool drives
both servers in turn and a table of requests/s, p50/p99 latency, the nimbo/bare ratio and the
targets is printed. Nothing is asserted. Everything started is stopped and the temporary
directory removed, also on errors. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import importlib
import json
import math
import multiprocessing as mp
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project before benchmarks/ (the scripts' own directory, first on sys.path): its auth.py
# must not shadow the auth package that gateway.gunicorn_conf and the test helpers import.
sys.path.insert(0, str(ROOT))
VENV_BIN = ROOT / ".venv" / "bin"
HOST = "127.0.0.1"
API_WORKERS = 2
MEMORY_URI = "memory://bench?cores=4096&memory_mib=8388608"
GUNICORN_CONF = "python:gateway.gunicorn_conf"
# gunicorn --pythonpath for the benchmarks' own apps: gunicorn puts each entry first in turn,
# so the project root ends up before benchmarks/, whose auth.py would else shadow the auth
# package the gateway imports.
BENCH_PYTHONPATH = f"{ROOT / 'benchmarks'},{ROOT}"
INFRA = "http://schemas.ogf.org/occi/infrastructure#"
OCCI_JSON = "application/occi+json"
USER_AGENT = "nimbo-benchmark/1 OCCI/1.2"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
SCENARIO_TIME_LIMIT = 120.0  # seconds of measurement per scenario and server at most


# --- HTTP client --------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request the benchmark repeats."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None = None
    expect: int = 200


@dataclass(frozen=True)
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def send(conn: http.client.HTTPConnection, call: Call) -> Reply:
    """One request on a keep-alive connection; reconnects once if the server closed it."""
    for attempt in (1, 2):
        try:
            conn.request(call.method, call.path, body=call.body, headers=call.headers)
            response = conn.getresponse()
            return Reply(response.status, response.getheaders(), response.read())
        except (ConnectionError, http.client.HTTPException):
            conn.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@dataclass
class ThreadResult:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    start: float = math.inf
    end: float = 0.0


def _client_thread(
    port: int,
    call: Call,
    count: int,
    warmup: int,
    barrier: threading.Barrier,
    deadline: float,
    result: ThreadResult,
) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        for _ in range(warmup):
            send(conn, call)
        barrier.wait()
        result.start = time.monotonic()
        for _ in range(count):
            began = time.monotonic()
            try:
                reply = send(conn, call)
                ok, problem = reply.status == call.expect, f"status {reply.status}"
            except (OSError, http.client.HTTPException) as exc:
                ok, problem = False, repr(exc)
            finished = time.monotonic()
            if ok:
                result.latencies.append(finished - began)
            else:
                result.errors += 1
                result.first_error = result.first_error or problem
            if finished > deadline:
                break
        result.end = time.monotonic()
    finally:
        conn.close()


def _client_process(
    port: int,
    call: Call,
    counts: list[int],
    warmup: int,
    barrier: threading.Barrier,
    deadline: float,
    results: mp.Queue[list[ThreadResult]],
) -> None:
    """One load-generator process: a thread with its own keep-alive connection per count."""
    thread_results = [ThreadResult() for _ in counts]
    threads = [
        threading.Thread(target=_client_thread, args=(port, call, n, warmup, barrier, deadline, r))
        for n, r in zip(counts, thread_results, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(thread_results)


@dataclass
class Measurement:
    """One scenario against one server."""

    latencies: list[float]
    errors: int
    first_error: str
    elapsed: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed > 0 else 0.0

    def percentile_ms(self, p: float) -> float:
        """Nearest-rank percentile in milliseconds."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1] * 1000


def load(
    port: int, call: Call, *, requests: int, concurrency: int, processes: int, warmup: int
) -> Measurement:
    """``requests`` calls over ``concurrency`` keep-alive connections spread over processes."""
    processes = max(1, min(processes, concurrency))
    per_connection = [
        requests // concurrency + (i < requests % concurrency) for i in range(concurrency)
    ]
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(concurrency, timeout=120)
    results = ctx.Queue()
    deadline = time.monotonic() + SCENARIO_TIME_LIMIT + 120  # + time to warm up
    workers = [
        ctx.Process(
            target=_client_process,
            args=(port, call, per_connection[i::processes], warmup, barrier, deadline, results),
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    gathered: list[ThreadResult] = []
    try:
        for _ in workers:
            gathered.extend(results.get(timeout=SCENARIO_TIME_LIMIT + 300))
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    started = [r for r in gathered if r.end]
    elapsed = (max(r.end for r in started) - min(r.start for r in started)) if started else 0.0
    return Measurement(
        [lat for r in gathered for lat in r.latencies],
        sum(r.errors for r in gathered),
        next((r.first_error for r in gathered if r.first_error), ""),
        elapsed,
    )


# --- processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (nimbo up starts its children in new sessions)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [p for p, parent in parents.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_process(process: subprocess.Popen[bytes], first: signal.Signals) -> None:
    """``first`` (SIGINT for nimbo up, SIGTERM for gunicorn), then SIGTERM, then SIGKILL; and
    the same for whatever it started that outlived it."""
    if process.poll() is None:
        family = _descendants(process.pid)
        for sig, wait in ((first, STOP_TIMEOUT), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            process.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(wait)
                break
            print(f"  pid {process.pid} still running after {sig.name}", flush=True)
    else:
        family = []
    leftovers = [pid for pid in family if _alive(pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        time.sleep(1.0 if leftovers else 0)
        leftovers = [pid for pid in leftovers if _alive(pid)]


def _bench_env(data_dir: Path, entity_cache: int | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIMBO_")}
    env.update(
        NIMBO_LIBVIRT_URI=MEMORY_URI,
        NIMBO_API_WORKERS=str(API_WORKERS),
        NIMBO_DATA_DIR=str(data_dir),
    )
    if entity_cache is not None:
        env["NIMBO_ENTITY_CACHE_SIZE"] = str(entity_cache)
    return env


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen(
            args,
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_until(
    what: str,
    ready: Callable[[], bool],
    timeout: float,
    process: subprocess.Popen[bytes],
    log: Path,
) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"{what} did not come up; last lines of {log}:\n{tail}")
        time.sleep(0.3)


def _answers(port: int, call: Call) -> bool:
    try:
        conn = http.client.HTTPConnection(HOST, port, timeout=5)
        try:
            return send(conn, call).status == call.expect
        finally:
            conn.close()
    except OSError:
        return False


# --- the node -----------------------------------------------------------------------------


@dataclass
class Node:
    port: int
    data_dir: Path
    headers: dict[str, str]  # Authorization and User-Agent
    computes: list[str] = field(default_factory=list)  # paths
    create_body: bytes = b""


def start_node(
    tmp: Path,
    processes: list[tuple[subprocess.Popen[bytes], signal.Signals]],
    entity_cache: int | None = None,
    settings: dict[str, str] | None = None,
) -> Node:
    """``nimbo up`` in ``tmp`` with ``settings`` (``NIMBO_*`` variables) added."""
    data_dir, log = tmp / "data", tmp / "nimbo.log"
    port = free_port()
    env = {**_bench_env(data_dir, entity_cache), **(settings or {})}
    up = _spawn(
        [str(VENV_BIN / "nimbo"), "up", "--data-dir", str(data_dir), "--listen", f"{HOST}:{port}"],
        env,
        log,
    )
    processes.append((up, signal.SIGINT))
    password_file = data_dir / "admin-password"
    _wait_until(
        "nimbo up (admin password)",
        lambda: password_file.exists() and bool(password_file.read_text().strip()),
        START_TIMEOUT,
        up,
        log,
    )
    token = base64.b64encode(f"admin:{password_file.read_text().strip()}".encode()).decode()
    node = Node(port, data_dir, {"Authorization": f"Basic {token}", "User-Agent": USER_AGENT})
    _wait_until(
        "nimbo up (GET /-/)",
        lambda: _answers(port, query_interface_call(node)),
        START_TIMEOUT,
        up,
        log,
    )
    image = tmp / "bench.img"
    image.write_bytes(b"\0" * 1048576)
    subprocess.run(
        [
            str(VENV_BIN / "nimbo"),
            "image",
            "add",
            "bench",
            "--file",
            str(image),
            "--data-dir",
            str(data_dir),
        ],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    node.create_body = _create_body(node)
    return node


def query_interface_call(node: Node) -> Call:
    return Call("GET", "/-/", {**node.headers, "Accept": "text/plain"})


def compute_call(node: Node) -> Call:
    return Call("GET", node.computes[0], {**node.headers, "Accept": "text/plain"})


def listing_call(node: Node) -> Call:
    return Call("GET", "/compute/", {**node.headers, "Accept": OCCI_JSON})


def create_call(node: Node) -> Call:
    return Call(
        "POST",
        "/compute/",
        {**node.headers, "Accept": "text/plain", "Content-Type": "text/plain"},
        node.create_body,
        expect=201,
    )


def _create_body(node: Node) -> bytes:
    """Kind plus the os_tpl mixin of the image, its scheme as the query interface shows it."""
    with _connection(node.port) as conn:
        text = send(conn, query_interface_call(node)).body.decode()
    match = re.search(r'^Category: bench; scheme="([^"]+)"', text, re.MULTILINE)
    if match is None:
        raise RuntimeError("the registered image does not show in the query interface")
    return (
        f'Category: compute; scheme="{INFRA}"; class="kind"\r\n'
        f'Category: bench; scheme="{match.group(1)}"; class="mixin"\r\n'
    ).encode()


@contextlib.contextmanager
def _connection(port: int) -> Iterator[http.client.HTTPConnection]:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        yield conn
    finally:
        conn.close()


def create_computes(node: Node, count: int, parallel: int = 8) -> None:
    local = threading.local()
    connections: list[http.client.HTTPConnection] = []

    def create(_: int) -> str:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection(HOST, node.port, timeout=60)
            connections.append(local.conn)
        reply = send(local.conn, create_call(node))
        location = reply.header("Location")
        if reply.status != 201 or not location:
            raise RuntimeError(f"create answered {reply.status}: {reply.body[:300]!r}")
        return "/" + location.split("/", 3)[3]

    try:
        with ThreadPoolExecutor(parallel) as pool:
            node.computes.extend(pool.map(create, range(count)))
    finally:
        for conn in connections:
            conn.close()


def _state(node: Node, conn: http.client.HTTPConnection, path: str) -> str:
    text = send(conn, Call("GET", path, {**node.headers, "Accept": "text/plain"})).body
    match = re.search(rb'occi\.compute\.state="([^"]*)"', text)
    return match.group(1).decode() if match else "?"


def wait_active(node: Node, timeout: float) -> dict[str, int]:
    """Poll a few computes (the last created, then a spread) until active, then count all."""
    sample = sorted(set(node.computes[-5:] + node.computes[:: max(1, len(node.computes) // 10)]))
    deadline = time.monotonic() + timeout
    with _connection(node.port) as conn:
        while time.monotonic() < deadline:
            pending = [p for p in sample if _state(node, conn, p) != "active"]
            if not pending:
                break
            time.sleep(1.0)
        listing = json.loads(send(conn, listing_call(node)).body)
    states: dict[str, int] = {}
    for resource in listing.get("resources", []):
        state = resource.get("attributes", {}).get("occi.compute.state", "?")
        states[state] = states.get(state, 0) + 1
    return states


# --- the bare baseline --------------------------------------------------------------------


_GUNICORN_SET = {"server", "date", "connection", "content-length", "transfer-encoding"}


def capture(node: Node, path: Path) -> dict[str, int]:
    """Record nimbo's replies to the four calls for the bare app; returns their body sizes."""
    calls = {
        "query_interface": query_interface_call(node),
        "compute": compute_call(node),
        "listing": listing_call(node),
        "create": create_call(node),
    }
    entries, sizes = {}, {}
    with _connection(node.port) as conn:
        for name, call in calls.items():
            reply = send(conn, call)
            if reply.status != call.expect:
                raise RuntimeError(f"{name}: nimbo answered {reply.status}")
            if name == "create":
                node.computes.append("/" + (reply.header("Location") or "").split("/", 3)[3])
            entries[name] = {
                "status": reply.status,
                "headers": [[k, v] for k, v in reply.headers if k.lower() not in _GUNICORN_SET],
                "body": base64.b64encode(reply.body).decode(),
            }
            sizes[name] = len(reply.body)
    path.write_text(json.dumps(entries))
    return sizes


def start_gunicorn(
    app: str,
    env: dict[str, str],
    log: Path,
    ready: Call,
    processes: list[tuple[subprocess.Popen[bytes], signal.Signals]],
) -> tuple[int, subprocess.Popen[bytes]]:
    """One of the benchmarks' own apps (``module:app`` in benchmarks/) under gunicorn with
    nimbo's settings and worker count, on a free port; returns once it answers ``ready``."""
    port = free_port()
    server = _spawn(
        [
            str(VENV_BIN / "python"),
            "-m",
            "gunicorn",
            "--config",
            GUNICORN_CONF,
            "--workers",
            str(API_WORKERS),
            "--bind",
            f"{HOST}:{port}",
            "--pythonpath",
            BENCH_PYTHONPATH,
            app,
        ],
        env,
        log,
    )
    processes.append((server, signal.SIGTERM))
    _wait_until(app, lambda: _answers(port, ready), START_TIMEOUT, server, log)
    return port, server


def start_bare(
    tmp: Path, capture_file: Path, processes: list[tuple[subprocess.Popen[bytes], signal.Signals]]
) -> int:
    env = {**os.environ, "NIMBO_BENCH_CAPTURE": str(capture_file)}
    ready = Call("GET", "/-/", {})
    return start_gunicorn("bare_app:app", env, tmp / "bare.log", ready, processes)[0]


# --- scenarios and report -----------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    text: str
    met: Callable[[Measurement, Measurement], bool]


@dataclass(frozen=True)
class Scenario:
    title: str
    call: Callable[[Node], Call]
    requests: int
    warmup: int
    target: Target | None


@dataclass
class Row:
    scenario: Scenario
    nimbo: Measurement
    bare: Measurement


def scenarios(requests: int, computes: int) -> list[Scenario]:
    listing_target = Target(
        "p50 & p99 < 150 ms", lambda n, _b: n.percentile_ms(99) < 150 and n.percentile_ms(50) < 150
    )
    return [
        Scenario("GET /-/ (text/plain)", query_interface_call, requests, 5, None),
        Scenario(
            "GET /compute/ID (text/plain)",
            compute_call,
            requests,
            5,
            Target("ratio >= 0.6", lambda n, b: n.rate / b.rate >= 0.6),
        ),
        Scenario(
            f"GET /compute/ ({computes} computes, occi+json)",
            listing_call,
            max(20, requests // 20),
            1,
            listing_target if computes == 1000 else None,
        ),
        Scenario(
            "POST /compute/ (create, text/plain)",
            create_call,
            max(50, requests // 10),
            2,
            Target("p99 < 50 ms", lambda n, _b: n.percentile_ms(99) < 50),
        ),
    ]


def run_scenario(
    scenario: Scenario, node: Node, bare_port: int, *, concurrency: int, processes: int
) -> Row:
    call = scenario.call(node)
    results = {}
    # bare first: nimbo's creates leave provisioning jobs behind that would load the machine
    for name, port in (("bare", bare_port), ("nimbo", node.port)):
        results[name] = load(
            port,
            call,
            requests=scenario.requests,
            concurrency=concurrency,
            processes=processes,
            warmup=scenario.warmup,
        )
    return Row(scenario, results["nimbo"], results["bare"])


def _fmt(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def print_table(rows: list[Row]) -> None:
    head = (
        f"{'scenario':<42} {'n':>5} | {'nimbo r/s':>9} {'p50 ms':>7} {'p99 ms':>7} | "
        f"{'bare r/s':>9} {'p50 ms':>7} {'p99 ms':>7} | {'ratio':>5} | "
        f"{'target':<19} {'result':<6}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        n, b = row.nimbo, row.bare
        ratio = n.rate / b.rate if b.rate else math.nan
        target = row.scenario.target
        verdict = "-" if target is None else ("PASS" if target.met(n, b) else "MISS")
        print(
            f"{row.scenario.title:<42} {len(n.latencies):>5} | {n.rate:>9.1f} "
            f"{_fmt(n.percentile_ms(50)):>7} {_fmt(n.percentile_ms(99)):>7} | "
            f"{b.rate:>9.1f} {_fmt(b.percentile_ms(50)):>7} {_fmt(b.percentile_ms(99)):>7} | "
            f"{_fmt(ratio, 2):>5} | {target.text if target else '-':<19} {verdict:<6}"
        )
    for row in rows:
        for name, m in (("nimbo", row.nimbo), ("bare", row.bare)):
            if m.errors:
                print(
                    f"  ! {row.scenario.title} on {name}: {m.errors} failed requests "
                    f"(first: {m.first_error})"
                )


def print_setup(args: argparse.Namespace, processes: int) -> None:
    conf = importlib.import_module("gateway.gunicorn_conf")
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )
    print(
        f"servers: gunicorn --config {GUNICORN_CONF} (worker_class={conf.worker_class}, "
        f"threads={conf.threads}, keepalive={conf.keepalive}s, access log on), "
        f"{API_WORKERS} workers each; nimbo via `nimbo up` (NIMBO_API_WORKERS={API_WORKERS}, "
        f"{MEMORY_URI}), bare via benchmarks/bare_app.py"
    )
    if args.settings:
        print("nimbo settings: " + ", ".join(f"{k}={v}" for k, v in args.settings.items()))
    print(
        f"client: {args.concurrency} keep-alive http.client connections in {processes} "
        f"process(es), the same client and counts for nimbo and bare; it runs on the same "
        f"{os.cpu_count()} cores as the servers and takes CPU from both alike, so absolute "
        f"figures are low and the ratio is the fairer figure"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument(
        "--requests",
        type=int,
        default=None,
        help="requests per server for the two small GETs (default 4000; quick "
        "400); the listing gets N/20 (at least 20), create N/10 (at "
        "least 50)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="keep-alive connections of the client (default 4)",
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=2,
        help="load-generator processes the connections are spread over (default 2)",
    )
    parser.add_argument(
        "--computes",
        type=int,
        default=None,
        help="computes created before measuring (default 1000; quick 200)",
    )
    parser.add_argument(
        "--entity-cache",
        type=int,
        default=None,
        help="NIMBO_ENTITY_CACHE_SIZE for nimbo (default: the configured default; 0 measures "
        "every read on the store, as right after a write)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for nimbo (NIMBO_NAME=VALUE), e.g. worker_nice=0; repeatable",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a fast smoke run: fewer requests and computes"
    )
    args = parser.parse_args(argv)
    try:
        args.settings = {
            f"NIMBO_{name.strip().upper()}": value
            for name, value in (item.split("=", 1) for item in args.set)
        }
    except ValueError:
        parser.error("--set takes NAME=VALUE")
    args.requests = args.requests or (400 if args.quick else 4000)
    args.computes = args.computes or (200 if args.quick else 1000)
    if args.requests < 1 or args.concurrency < 1 or args.computes < 1:
        parser.error("--requests, --concurrency and --computes must be positive")
    return args


def benchmark(
    args: argparse.Namespace,
    tmp: Path,
    processes: list[tuple[subprocess.Popen[bytes], signal.Signals]],
) -> None:
    client_processes = max(1, min(args.client_processes, args.concurrency))
    print_setup(args, client_processes)
    began = time.monotonic()
    node = start_node(tmp, processes, args.entity_cache, args.settings)
    print(
        f"nimbo up on {HOST}:{node.port} after {time.monotonic() - began:.1f}s; "
        f"creating {args.computes} computes ...",
        flush=True,
    )
    began = time.monotonic()
    create_computes(node, args.computes)
    created = time.monotonic() - began
    states = wait_active(node, timeout=60 + args.computes * 0.5)
    print(
        f"created {args.computes} computes in {created:.1f}s "
        f"({args.computes / created:.0f}/s), all provisioned after "
        f"{time.monotonic() - began:.1f}s; states: {states}",
        flush=True,
    )
    sizes = capture(node, tmp / "capture.json")
    bare_port = start_bare(tmp, tmp / "capture.json", processes)
    print(f"bare Flask on {HOST}:{bare_port}; response bodies (bytes): {sizes}", flush=True)
    rows = []
    for scenario in scenarios(args.requests, args.computes):
        print(
            f"measuring {scenario.title}: {scenario.requests} requests per server ...", flush=True
        )
        rows.append(
            run_scenario(
                scenario, node, bare_port, concurrency=args.concurrency, processes=client_processes
            )
        )
    print()
    print_table(rows)
    print()
    print(
        "ratio = nimbo req/s / bare req/s at the same concurrency; latency = request sent to "
        "response read, per request, at that concurrency; bare answers with nimbo's captured "
        "bytes. Create: each nimbo POST also enqueues a provisioning job that the worker runs "
        "on the same cores meanwhile."
    )


Processes = list[tuple[subprocess.Popen[bytes], signal.Signals]]


def run_benchmark(
    prefix: str,
    run: Callable[[argparse.Namespace, Path, Processes], None],
    args: argparse.Namespace,
) -> int:
    """``run(args, tmp, processes)`` in a fresh temporary directory; whatever it started
    (appended to ``processes``) is stopped and the directory removed, also on errors."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    processes: Processes = []
    try:
        run(args, tmp, processes)
        return 0
    finally:
        for process, first in reversed(processes):
            stop_process(process, first)
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    return run_benchmark("nimbo-bench-", benchmark, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
