"""Provisioning through the gateway: boot latency against the same guest by hand, and a burst.

    .venv/bin/python benchmarks/provision.py [--rounds N] [--burst N] [--quick]

1. Boot latency. A throwaway ``nimbo up`` on ``qemu:///system`` (TCG, a pool of its own in the
   temporary directory) with the test appliance registered as os_tpl ``appliance``. Each round
   POSTs a compute (1 core, 128 MiB, no NIC) and times, from sending the POST, the first line
   and the ``NIMBO-REPORT-BEGIN`` line of the guest's serial console log; then deletes it. In
   the same round the same guest is started by hand: a qcow2 overlay of the appliance, a config
   drive from :func:`backends.configdrive.build_config_drive` and the XML of
   :func:`backends.libvirt.xml.domain_xml` for an equivalent ComputeSpec, prepared beforehand
   and started with ``virsh create``, timed from just before ``virsh create``.
2. Burst. A node whose workers each drive a simulated host (libvirt ``test:///<node file>``,
   one per worker process) gets many creates at once from keep-alive connections; API latency,
   the time until all are active (one listing, polled) and the end-to-end rate are printed.

Nothing is asserted; targets are printed with PASS or MISS. Everything made (nodes, domains,
the pool and its volumes, the temporary directory) is removed, also on errors and Ctrl-C.
See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from occi_api import (
    HOST,
    INFRA,
    ROOT,
    START_TIMEOUT,
    USER_AGENT,
    VENV_BIN,
    Call,
    Measurement,
    Node,
    ThreadResult,
    _answers,
    _client_thread,
    _connection,
    _spawn,
    _wait_until,
    free_port,
    listing_call,
    query_interface_call,
    send,
    stop_process,
)

from backends.base import ComputeSpec, domain_name
from backends.configdrive import build_config_drive
from backends.libvirt import xml
from gateway.services.context import context_spec

QEMU_URI = "qemu:///system"
APPLIANCE = ROOT / "appliances" / "cache" / "nimbo-test-appliance.qcow2"
BUILD_SCRIPT = ROOT / "appliances" / "build-test-appliance"
REPORT_MARK = b"NIMBO-REPORT-BEGIN"
GUEST_CORES = 1
GUEST_MEMORY_MIB = 128
GIB = 1024**3
CONSOLE_POLL = 0.01  # seconds between two reads of a console log
BOOT_TIMEOUT = 180.0  # TCG on two shared cores
DELETE_TIMEOUT = 120.0
OVERHEAD_TARGET_MS = 300.0
BURST_TARGET_RATE = 50.0  # creates/s through the whole pipeline
BURST_JUDGED_FROM = 100  # bursts smaller than this are a smoke run: the rate is not judged
LISTING_POLL = 0.1
SIM_HOST_CPUS = 128  # each simulated host fits a whole burst of 1-core computes
SIM_HOST_MEMORY_KIB = 256 * 1024**2

Processes = list[tuple[subprocess.Popen[bytes], signal.Signals]]


# --- libvirt and nimbo from the outside ---------------------------------------------------


def virsh(*args: str, check: bool = True) -> str:
    result = subprocess.run(
        ["virsh", "-q", "-c", QEMU_URI, *args], capture_output=True, text=True, check=False
    )
    if check and result.returncode:
        raise RuntimeError(f"virsh {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


@dataclass
class Leftovers:
    """What was made in libvirt outside the temporary directory, to remove at the end."""

    domains: list[str] = field(default_factory=list)
    pools: list[str] = field(default_factory=list)

    def remove(self) -> None:
        existing = set(virsh("list", "--all", "--name", check=False).split())
        for name in (d for d in self.domains if d in existing):
            virsh("destroy", name, check=False)
            virsh("undefine", name, check=False)
        existing = set(virsh("pool-list", "--all", "--name", check=False).split())
        for name in (p for p in self.pools if p in existing):
            virsh("pool-destroy", name, check=False)
            virsh("pool-undefine", name, check=False)


def nimbo_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The caller's environment without its NIMBO_* variables, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIMBO_")}
    env["NIMBO_DATA_DIR"] = str(data_dir)
    env.update({f"NIMBO_{name.upper()}": value for name, value in settings.items()})
    return env


def start_up(tmp: Path, env: dict[str, str], processes: Processes) -> Node:
    """``nimbo up`` in ``tmp``; returns once it answers the query interface."""
    data_dir, log, port = Path(env["NIMBO_DATA_DIR"]), tmp / "nimbo.log", free_port()
    nimbo = str(VENV_BIN / "nimbo")
    up = _spawn([nimbo, "up", "--data-dir", str(data_dir), "--listen", f"{HOST}:{port}"], env, log)
    processes.append((up, signal.SIGINT))
    secret = data_dir / "admin-password"

    def has_password() -> bool:
        return secret.exists() and bool(secret.read_text().strip())

    _wait_until("nimbo up (admin password)", has_password, START_TIMEOUT, up, log)
    credentials = f"admin:{secret.read_text().strip()}".encode()
    node = Node(
        port,
        data_dir,
        {
            "Authorization": "Basic " + base64.b64encode(credentials).decode(),
            "User-Agent": USER_AGENT,
        },
    )
    ready = query_interface_call(node)
    _wait_until("nimbo up (GET /-/)", lambda: _answers(port, ready), START_TIMEOUT, up, log)
    return node


def add_image(node: Node, env: dict[str, str], name: str, path: Path) -> None:
    args = ["image", "add", name, "--file", str(path), "--data-dir", str(node.data_dir)]
    subprocess.run(
        [str(VENV_BIN / "nimbo"), *args], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )


def compute_body(node: Node, image: str) -> bytes:
    """Compute kind, the os_tpl mixin of ``image`` (scheme from the query interface), 1 core
    and GUEST_MEMORY_MIB of memory, as ``text/plain``."""
    with _connection(node.port) as conn:
        text = send(conn, query_interface_call(node)).body.decode()
    found = re.search(rf'^Category: {re.escape(image)}; scheme="([^"]+)"', text, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"image {image} does not show in the query interface")
    lines = [
        f'Category: compute; scheme="{INFRA}"; class="kind"',
        f'Category: {image}; scheme="{found.group(1)}"; class="mixin"',
        f"X-OCCI-Attribute: occi.compute.cores={GUEST_CORES}",
        f"X-OCCI-Attribute: occi.compute.memory={GUEST_MEMORY_MIB / 1024}",
    ]
    return "".join(line + "\r\n" for line in lines).encode()


def post_call(node: Node, body: bytes) -> Call:
    headers = {**node.headers, "Accept": "text/plain", "Content-Type": "text/plain"}
    return Call("POST", "/compute/", headers, body, expect=201)


def location_path(reply_location: str | None) -> str:
    if not reply_location:
        raise RuntimeError("a create answered without Location")
    return "/" + reply_location.split("/", 3)[3]


# --- part 1: boot latency ------------------------------------------------------------------


@dataclass
class Boot:
    """Seconds from the start (POST sent / just before ``virsh create``) to each event."""

    answered: float  # the 201 read / virsh create returned
    first_line: float  # the console log holds a first complete line
    report: float  # NIMBO-REPORT-BEGIN is in the console log
    job: float = math.nan  # gateway: how long the worker's provision_compute job ran


def watch_console(
    path: Path, began: float, problem: Callable[[], str | None], timeout: float = BOOT_TIMEOUT
) -> tuple[float, float]:
    """Poll the console log at ``path`` every CONSOLE_POLL s: seconds since ``began`` to its
    first line and to REPORT_MARK. ``problem`` is asked every 2 s (a text ends the wait)."""
    first: float | None = None
    offset, carry = 0, b""
    next_check = time.monotonic() + 2.0
    while True:
        try:
            with path.open("rb") as log:
                log.seek(offset)
                chunk = log.read()
        except FileNotFoundError:
            chunk = b""
        now = time.monotonic()
        if chunk:
            data, offset = carry + chunk, offset + len(chunk)
            if first is None and b"\n" in data:
                first = now - began
            if REPORT_MARK in data:
                return first if first is not None else now - began, now - began
            carry = data[-len(REPORT_MARK) :]
        if now >= next_check:
            next_check = now + 2.0
            trouble = problem()
            if trouble:
                raise RuntimeError(f"{trouble}; console so far: {_tail(path)}")
        if now - began > timeout:
            raise RuntimeError(f"no {REPORT_MARK.decode()} within {timeout:.0f} s: {_tail(path)}")
        time.sleep(CONSOLE_POLL)


def _tail(path: Path) -> str:
    with contextlib.suppress(OSError):
        return repr(path.read_bytes()[-600:].decode(errors="replace"))
    return f"{path} does not exist"


@dataclass
class Gateway:
    node: Node
    conn: http.client.HTTPConnection
    body: bytes
    consoles: Path  # the worker's console_dir: <data dir>/consoles
    log: Path  # of nimbo up, the worker's lines among them

    def get(self, path: str) -> tuple[int, str]:
        reply = send(self.conn, Call("GET", path, {**self.node.headers, "Accept": "text/plain"}))
        return reply.status, reply.body.decode(errors="replace")


def gateway_boot(gw: Gateway, leftovers: Leftovers) -> Boot:
    began = time.monotonic()
    reply = send(gw.conn, post_call(gw.node, gw.body))
    answered = time.monotonic() - began
    if reply.status != 201:
        raise RuntimeError(f"create answered {reply.status}: {reply.body[:300]!r}")
    path = location_path(reply.header("Location"))
    name = domain_name(path.rsplit("/", 1)[1])
    leftovers.domains.append(name)
    console = gw.consoles / f"{name}.console.log"

    def problem() -> str | None:
        _status, text = gw.get(path)
        return f"the compute went to error: {text.strip()}" if 'state="error"' in text else None

    first, report = watch_console(console, began, problem)
    named = xml.console_path(virsh("dumpxml", name))
    if named != str(console):
        print(f"  ! {name} writes its console to {named}, not to {console}", flush=True)
    job = job_seconds(gw.log, "provision_compute", path.rsplit("/", 1)[1])
    delete_compute(gw, path, name)
    return Boot(answered, first, report, job)


def job_seconds(log: Path, job: str, entity_id: str) -> float:
    """How long RQ says the job ran (its "Successfully completed" line); NaN if not found."""
    pattern = (
        rf"Successfully completed {job}\({re.escape(entity_id)}\) job in (\d+):(\d+):([\d.]+)s"
    )
    found = re.search(pattern, log.read_text(errors="replace"))
    if found is None:
        return math.nan
    hours, minutes, seconds = found.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def delete_compute(gw: Gateway, path: str, domain: str) -> None:
    """DELETE, then wait until the domain is gone from libvirt and the delete job has ended
    (the API hides the compute at once: its 404 says nothing about the job)."""
    reply = send(gw.conn, Call("DELETE", path, gw.node.headers))
    if reply.status not in (200, 204):
        raise RuntimeError(f"DELETE {path} answered {reply.status}: {reply.body[:300]!r}")
    deadline = time.monotonic() + DELETE_TIMEOUT
    while domain in virsh("list", "--all", "--name").split():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path}: domain {domain} still there {DELETE_TIMEOUT:.0f} s later")
        time.sleep(0.2)
    entity_id, deadline = path.rsplit("/", 1)[1], time.monotonic() + 30.0
    while math.isnan(job_seconds(gw.log, "delete_compute", entity_id)):
        if time.monotonic() > deadline:
            print(f"  ! no end of the delete job of {entity_id} in {gw.log}", flush=True)
            break
        time.sleep(0.2)


@dataclass
class ByHand:
    image: Path  # the appliance copy the gateway uses too
    workdir: Path
    tag: str


def hand_boot(hand: ByHand, round_no: int, leftovers: Leftovers) -> Boot:
    """The equivalent guest, prepared first, then timed from just before ``virsh create``."""
    compute_id = f"bench-hand-{hand.tag}-{round_no}"
    work = hand.workdir / compute_id
    work.mkdir()
    work.chmod(0o755)  # QEMU runs as its own user
    overlay, iso, console = work / "root.qcow2", work / "context.iso", work / "console.log"
    size = max(hand.image.stat().st_size, GIB)  # as the worker sizes the root clone
    backing = ["-F", "qcow2", "-b", str(hand.image)]
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", *backing, str(overlay), str(size)], check=True
    )
    iso.write_bytes(build_config_drive(context_spec(compute_id, {}, ())))
    spec = ComputeSpec(
        id=compute_id,
        name=compute_id,
        cores=GUEST_CORES,
        memory_mib=GUEST_MEMORY_MIB,
        config_drive=str(iso),
    )
    definition = work / "domain.xml"
    definition.write_text(
        xml.domain_xml(
            spec,
            domain_type="qemu",
            disks=[xml.DiskSource(target_dev="vda", path=str(overlay))],
            console_path=str(console),
        )
    )
    name = domain_name(compute_id)
    leftovers.domains.append(name)

    def problem() -> str | None:
        state = virsh("domstate", name, check=False).strip()
        return None if state == "running" else f"{name} is {state or 'gone'}"

    began = time.monotonic()
    virsh("create", str(definition))
    answered = time.monotonic() - began
    first, report = watch_console(console, began, problem)
    virsh("destroy", name)
    shutil.rmtree(work, ignore_errors=True)
    return Boot(answered, first, report)


def ensure_appliance() -> None:
    if APPLIANCE.is_file():
        return
    print(f"{APPLIANCE} missing: building it with {BUILD_SCRIPT} ...", flush=True)
    subprocess.run([str(BUILD_SCRIPT)], check=True, stdout=subprocess.DEVNULL)


def boot_latency(
    rounds: int, tmp: Path, processes: Processes, leftovers: Leftovers
) -> dict[str, list[Boot]]:
    ensure_appliance()
    tag = uuid.uuid4().hex[:8]
    image = tmp / "appliance.qcow2"  # libvirt relabels backing files: not the shared cache
    shutil.copyfile(APPLIANCE, image)
    image.chmod(0o644)
    pool = f"nimbo-bench-{tag}"
    env = nimbo_env(
        tmp / "data",
        libvirt_uri=QEMU_URI,
        virt_type="qemu",
        storage_pool=pool,
        storage_pool_path=str(tmp / "pool"),
    )
    leftovers.pools.append(pool)
    began = time.monotonic()
    node = start_up(tmp, env, processes)
    add_image(node, env, "appliance", image)
    consoles = node.data_dir / "consoles"  # made by the worker when it opens the host
    print(
        f"nimbo up on {HOST}:{node.port} ({QEMU_URI}, TCG, pool {pool}) after "
        f"{time.monotonic() - began:.1f}s; {rounds} rounds, gateway and by hand in turn ...",
        flush=True,
    )
    hand = ByHand(image, tmp / "by-hand", tag)
    hand.workdir.mkdir()
    results: dict[str, list[Boot]] = {"gateway": [], "by hand": []}
    with _connection(node.port) as conn:
        gw = Gateway(node, conn, compute_body(node, "appliance"), consoles, tmp / "nimbo.log")
        runners: dict[str, Callable[[int], Boot]] = {
            "gateway": lambda _n: gateway_boot(gw, leftovers),
            "by hand": lambda n: hand_boot(hand, n, leftovers),
        }
        for n in range(rounds + 1):  # round 0 warms up (the worker's first job makes the
            # pool and opens its libvirt connection; caches fill): shown, not counted
            order = ["gateway", "by hand"] if n % 2 else ["by hand", "gateway"]
            for scenario in order:
                boot = runners[scenario](n)
                if n:
                    results[scenario].append(boot)
                job = "" if math.isnan(boot.job) else f" (provision job {boot.job * 1000:.0f} ms)"
                print(
                    f"  {f'round {n}' if n else 'warm-up':<8} {scenario:<8}: answered "
                    f"{boot.answered * 1000:6.0f} ms, first console line "
                    f"{boot.first_line * 1000:6.0f} ms, report {boot.report * 1000:6.0f} ms{job}",
                    flush=True,
                )
                time.sleep(1.0)  # let the delete / destroy settle before the next start
    return results


def _ms(values: list[float]) -> Measurement:
    return Measurement(values, 0, "", 0.0)


def print_boot(results: dict[str, list[Boot]]) -> None:
    events: list[tuple[str, str, Callable[[Boot], float]]] = [
        ("answered", "201 read | virsh create returned", lambda b: b.answered),
        ("first_line", "first console line", lambda b: b.first_line),
        ("report", "NIMBO-REPORT-BEGIN", lambda b: b.report),
    ]
    head = f"{'scenario':<9} {'event':<34} {'n':>2} {'p50 ms':>8} {'min ms':>8} {'max ms':>8}"
    print(head)
    print("-" * len(head))
    p50: dict[tuple[str, str], float] = {}
    for scenario, boots in results.items():
        for key, title, value in events:
            values = [value(b) for b in boots]
            p50[scenario, key] = _ms(values).percentile_ms(50)
            shown = title.split(" | ")[0 if scenario == "gateway" else -1]
            print(
                f"{scenario:<9} {shown:<34} {len(values):>2} {p50[scenario, key]:>8.0f} "
                f"{min(values) * 1000:>8.0f} {max(values) * 1000:>8.0f}"
            )
    jobs = [b.job for b in results["gateway"] if not math.isnan(b.job)]
    if jobs:
        print(
            f"{'gateway':<9} {'provision_compute job (RQ log)':<34} {len(jobs):>2} "
            f"{_ms(jobs).percentile_ms(50):>8.0f} {min(jobs) * 1000:>8.0f} {max(jobs) * 1000:>8.0f}"
        )
    print()
    for key, title, _value in events[1:]:
        gateway, hand = p50["gateway", key], p50["by hand", key]
        print(
            f"{title:<20}: ratio gateway/by hand (p50) {gateway / hand:5.2f}, "
            f"gateway overhead (p50 gateway - p50 by hand) {gateway - hand:6.0f} ms"
        )
    overhead = p50["gateway", "first_line"] - p50["by hand", "first_line"]
    verdict = "PASS" if overhead < OVERHEAD_TARGET_MS else "MISS"
    print(
        f"target: overhead p50 < {OVERHEAD_TARGET_MS:.0f} ms (on the first console line): "
        f"{overhead:.0f} ms {verdict}"
    )


# --- part 2: burst on simulated hosts ---------------------------------------------------------


def sim_host_file(directory: Path, name: str) -> Path:
    """A libvirt test driver node file (like tests/fixtures/hosts/host-a.xml), big enough for
    a whole burst."""
    path = directory / f"{name}.xml"
    path.write_text(
        "<node>\n"
        "  <cpu><mhz>2400</mhz><model>x86_64</model><nodes>1</nodes><sockets>2</sockets>"
        f"<cores>{SIM_HOST_CPUS // 4}</cores><threads>2</threads>"
        f"<active>{SIM_HOST_CPUS}</active></cpu>\n"
        f"  <memory>{SIM_HOST_MEMORY_KIB}</memory>\n"
        "</node>\n"
    )
    return path


@dataclass
class BurstNode:
    node: Node
    body: bytes
    logs: dict[str, Path]  # simulated host name -> log of its worker


def start_burst_node(hosts: int, tmp: Path, processes: Processes) -> BurstNode:
    """``nimbo up`` whose worker drives sim-1, and one ``nimbo worker`` per further host."""
    host_dir = tmp / "hosts"
    host_dir.mkdir()
    uris = {
        f"sim-{k}": f"test://{sim_host_file(host_dir, f'sim-{k}')}" for k in range(1, hosts + 1)
    }
    env = nimbo_env(
        tmp / "data",
        libvirt_uri=uris["sim-1"],
        host_name="sim-1",
        placement_policy="striping",
    )
    node = start_up(tmp, env, processes)
    logs = {"sim-1": tmp / "nimbo.log"}
    owners = {"sim-1": processes[-1][0]}  # nimbo up runs the first worker
    for name, uri in list(uris.items())[1:]:
        logs[name] = tmp / f"worker-{name}.log"
        args = ["worker", "--data-dir", str(node.data_dir), "--host", name, "--uri", uri]
        owners[name] = _spawn([str(VENV_BIN / "nimbo"), *args], env, logs[name])
        processes.append((owners[name], signal.SIGTERM))
    for name, log in logs.items():
        _wait_until(
            f"worker of {name}",
            _log_says(log, "Listening on"),
            START_TIMEOUT,
            owners[name],
            log,
        )
    image = tmp / "bench.img"
    image.write_bytes(b"\0" * 1048576)
    add_image(node, env, "bench", image)
    return BurstNode(node, compute_body(node, "bench"), logs)


def _log_says(log: Path, text: str) -> Callable[[], bool]:
    return lambda: text in log.read_text(errors="replace")


def compute_states(node: Node, conn: http.client.HTTPConnection) -> dict[str, str]:
    """Compute id -> occi.compute.state, from one listing."""
    listing = json.loads(send(conn, listing_call(node)).body)
    return {
        str(r.get("id")): str(r.get("attributes", {}).get("occi.compute.state", "?"))
        for r in listing.get("resources", [])
    }


def create_and_wait(bn: BurstNode, count: int, timeout: float) -> dict[str, str]:
    """``count`` creates one after the other, then wait until none is pending; their states."""
    with _connection(bn.node.port) as conn:
        for _ in range(count):
            reply = send(conn, post_call(bn.node, bn.body))
            if reply.status != 201:
                raise RuntimeError(f"create answered {reply.status}: {reply.body[:300]!r}")
        deadline = time.monotonic() + timeout
        while True:
            states = compute_states(bn.node, conn)
            if all(s in ("active", "error") for s in states.values()):
                return states
            if time.monotonic() > deadline:
                raise RuntimeError(f"computes not provisioned after {timeout:.0f} s: {states}")
            time.sleep(0.2)


@dataclass
class Burst:
    api: Measurement  # the POSTs
    posts_done: float  # seconds from the start to the last 201
    all_active: float  # seconds from the start to the listing showing every create active
    states: dict[str, int]
    jobs: dict[str, int]  # provisioning jobs run per simulated host


def burst(bn: BurstNode, count: int, clients: int, timeout: float) -> Burst:
    warm = create_and_wait(bn, len(bn.logs), timeout)  # one per worker: opens its driver
    clients = max(1, min(clients, count))
    per_client = [count // clients + (i < count % clients) for i in range(clients)]
    results = [ThreadResult() for _ in per_client]
    barrier = threading.Barrier(clients + 1, timeout=60)
    deadline = time.monotonic() + timeout
    threads = [
        threading.Thread(
            target=_client_thread,
            args=(bn.node.port, post_call(bn.node, bn.body), n, 0, barrier, deadline, r),
        )
        for n, r in zip(per_client, results, strict=True)
    ]
    for thread in threads:
        thread.start()
    states: dict[str, str] = {}
    with _connection(bn.node.port) as conn:
        barrier.wait()
        began = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(LISTING_POLL)
            states = {k: v for k, v in compute_states(bn.node, conn).items() if k not in warm}
            if len(states) >= count and all(s in ("active", "error") for s in states.values()):
                break
        settled = time.monotonic() - began
    for thread in threads:
        thread.join()
    api = Measurement(
        [lat for r in results for lat in r.latencies],
        sum(r.errors for r in results),
        next((r.first_error for r in results if r.first_error), ""),
        max(r.end for r in results) - began,
    )
    counted: dict[str, int] = {}
    for state in states.values():
        counted[state] = counted.get(state, 0) + 1
    everything_active = counted.get("active", 0) == count
    jobs = {
        name: log.read_text(errors="replace").count("Successfully completed provision_compute")
        for name, log in bn.logs.items()
    }
    return Burst(api, api.elapsed, settled if everything_active else math.nan, counted, jobs)


def print_burst(result: Burst, count: int) -> None:
    api = result.api
    rate = 0.0 if math.isnan(result.all_active) else count / result.all_active
    print(
        f"API during the burst: {len(api.latencies)} x 201 in {result.posts_done:.2f} s "
        f"({api.rate:.0f}/s), latency p50 {api.percentile_ms(50):.0f} ms, "
        f"p99 {api.percentile_ms(99):.0f} ms"
    )
    if api.errors:
        print(f"  ! {api.errors} creates failed (first: {api.first_error})")
    print(f"states after the burst: {result.states}")
    print(f"provisioning jobs run per simulated host (warm-up included): {result.jobs}")
    if math.isnan(result.all_active):
        print("all active: never (see the states above)")
    else:
        print(
            f"all {count} active after {result.all_active:.2f} s: end-to-end {rate:.1f} creates/s"
        )
    if count >= BURST_JUDGED_FROM:
        verdict = "PASS" if rate >= BURST_TARGET_RATE else "MISS"
        print(f"target: end-to-end >= {BURST_TARGET_RATE:.0f} creates/s: {rate:.1f}/s {verdict}")
    else:
        print(
            f"target: end-to-end >= {BURST_TARGET_RATE:.0f} creates/s: not judged below "
            f"--burst {BURST_JUDGED_FROM}"
        )


# --- command line ---------------------------------------------------------------------------


def print_machine() -> None:
    versions = " ".join(virsh("version", check=False).split())
    libvirt = re.search(r"Using library: libvirt (\S+)", versions)
    qemu = re.search(r"Running hypervisor: QEMU (\S+)", versions)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, libvirt {libvirt[1] if libvirt else '?'}, "
        f"QEMU {qemu[1] if qemu else '?'} (TCG); load average at start {load}"
    )
    print(
        "note: the cores are shared with other test runs (other guests, test suites): "
        "figures are noisy, compare gateway and by hand within one run rather than across runs"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument(
        "--rounds", type=int, default=None, help="boot rounds, each gateway + by hand (default 5)"
    )
    parser.add_argument(
        "--burst", type=int, default=None, help="creates fired at once (default 100; quick 20)"
    )
    parser.add_argument(
        "--clients", type=int, default=10, help="keep-alive connections of the burst (default 10)"
    )
    parser.add_argument(
        "--hosts", type=int, default=4, help="simulated hosts, one worker each (default 4)"
    )
    parser.add_argument(
        "--only", choices=("boot", "burst"), help="run one part only (default: both)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 rounds, burst of 20")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (2 if args.quick else 5)
    args.burst = args.burst or (20 if args.quick else 100)
    if min(args.rounds, args.burst, args.clients, args.hosts) < 1:
        parser.error("--rounds, --burst, --clients and --hosts must be positive")
    return args


@contextlib.contextmanager
def workspace() -> Iterator[tuple[Path, Processes, Leftovers]]:
    """A temporary directory QEMU can read, and what to stop and remove after, come what may."""
    tmp = Path(tempfile.mkdtemp(prefix="nimbo-bench-provision-", dir="/var/tmp"))
    tmp.chmod(0o755)  # QEMU runs as its own user
    processes: Processes = []
    leftovers = Leftovers()
    try:
        yield tmp, processes, leftovers
    finally:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C: still clean
        try:
            for process, first in reversed(processes):
                stop_process(process, first)
            processes.clear()
            leftovers.remove()
            shutil.rmtree(tmp, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, previous)


def _terminate(_sig: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)  # SIGTERM: unwind through the cleanups like Ctrl-C


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        run(args)
    except KeyboardInterrupt:
        print("\ninterrupted; everything it had started is stopped and removed", file=sys.stderr)
        return 130
    return 0


def run(args: argparse.Namespace) -> None:
    print_machine()
    if args.only != "burst":
        print()
        print(
            f"== boot latency: appliance, {GUEST_CORES} core, {GUEST_MEMORY_MIB} MiB, "
            "no NIC, domain type qemu (TCG) =="
        )
        with workspace() as (tmp, processes, leftovers):
            results = boot_latency(args.rounds, tmp, processes, leftovers)
        print()
        print_boot(results)
    if args.only != "boot":
        print()
        print(
            f"== burst: {args.burst} creates from {args.clients} keep-alive connections, "
            f"{args.hosts} simulated hosts (libvirt test:///<node file>, one worker each) =="
        )
        with workspace() as (tmp, processes, _leftovers):
            began = time.monotonic()
            bn = start_burst_node(args.hosts, tmp, processes)
            print(
                f"nimbo up on {HOST}:{bn.node.port} with {args.hosts} workers after "
                f"{time.monotonic() - began:.1f}s; firing ...",
                flush=True,
            )
            result = burst(bn, args.burst, args.clients, timeout=120 + args.burst)
        print()
        print_burst(result, args.burst)


if __name__ == "__main__":
    sys.exit(main())
