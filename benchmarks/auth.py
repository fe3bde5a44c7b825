"""Authentication cost: GET one compute with each method against the same request unchecked.

    .venv/bin/python benchmarks/auth.py [--requests N] [--concurrency C] [--quick]

Starts, all on 127.0.0.1 and in a temporary directory: a throwaway slapd with the tests'
directory (``tests/auth/ldap_server.py``, StartTLS with a CA made here), a local OpenID Connect
issuer serving its JWKS (``tests/auth/jwks_server.py``), and ``nimbo up`` with
``auth_methods = local,ldap,oidc,token`` (production gunicorn settings, in-memory
``memory://`` host). One compute is created. Then the same keep-alive client pool GETs that
compute with:

- no authentication: ``benchmarks/noauth_app.py``, the same application on the same store
  whose chain takes any credentials unchecked (the baseline; the spread of its rounds is
  printed as the noise);
- Basic, local user (scrypt, then the authenticator's cache);
- Basic, LDAP user (search + bind, then the LDAP authenticator's bind cache);
- Bearer JWT (signature checked against the JWKS, then the verified-token cache);
- X-Auth-Token from ``POST /auth/tokens`` (Redis, then the short in-process cache).

Every method is measured once per round (``--rounds``; the order rotates, so that each
method leads a round in turn), so a drift of the machine touches them all alike. Each figure
is requests/s once warm (every connection first sends ``--warmup`` requests), with p50/p99
latency and the ratio to the baseline; the target is ratio >= 0.8. Nothing is
asserted. Everything started is stopped and the temporary directory removed, also on errors.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from occi_api import (
    HOST,
    Call,
    Measurement,
    Processes,
    _bench_env,
    create_computes,
    load,
    run_benchmark,
    send,
    start_gunicorn,
    start_node,
    wait_active,
)

from tests.auth.certs import CertificateAuthority, name
from tests.auth.jwks_server import AUDIENCE, IdentityProvider
from tests.auth.ldap_server import (
    GROUPS,
    PEOPLE,
    PEOPLE_ENTRIES,
    SERVICE_DN,
    SERVICE_PASSWORD,
    NimboSlapd,
)

TARGET_RATIO = 0.8
ADMIN_GROUP = "bench-admins"  # the LDAP person's group "physics" and this OIDC entitlement


@dataclass(frozen=True)
class Method:
    title: str
    headers: dict[str, str]
    port: int


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def start_directory(tmp: Path) -> NimboSlapd:
    pki = tmp / "pki"
    pki.mkdir()
    ca = CertificateAuthority(pki, name(("O", "nimbostratus bench"), ("CN", "Bench CA")))
    server_cert = ca.server("server")
    slapd = NimboSlapd(
        tmp / "slapd",
        ca_file=ca.cert_file,
        cert_file=server_cert.cert_file,
        key_file=server_cert.key_file,
    )
    (tmp / "slapd").mkdir()
    slapd.start()
    slapd.ca_path = str(ca.cert_file)  # type: ignore[attr-defined]
    return slapd


def settings(slapd: NimboSlapd, issuer: IdentityProvider) -> dict[str, str]:
    return {
        "NIMBO_AUTH_METHODS": "local,ldap,oidc,token",
        "NIMBO_AUTH_ADMIN_GROUPS": f"physics,{ADMIN_GROUP}",
        "NIMBO_LDAP_URL": slapd.ldap_uri.rstrip("/"),
        "NIMBO_LDAP_START_TLS": "true",
        "NIMBO_LDAP_CA_FILE": slapd.ca_path,  # type: ignore[attr-defined]
        "NIMBO_LDAP_BIND_DN": SERVICE_DN,
        "NIMBO_LDAP_BIND_PASSWORD": SERVICE_PASSWORD,
        "NIMBO_LDAP_USER_BASE": PEOPLE,
        "NIMBO_LDAP_GROUP_BASE": GROUPS,
        "NIMBO_OIDC_ISSUER": issuer.issuer,
        "NIMBO_OIDC_AUDIENCE": AUDIENCE,
    }


def start_unchecked(tmp: Path, env: dict[str, str], processes: Processes) -> int:
    ready = Call("GET", "/-/", {"Authorization": "Basic eDp4"})
    return start_gunicorn("noauth_app:app", env, tmp / "noauth.log", ready, processes)[0]


def issue_token(port: int, headers: dict[str, str]) -> str:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        reply = send(conn, Call("POST", "/auth/tokens", headers, b"", expect=201))
    finally:
        conn.close()
    token = reply.header("X-Subject-Token")
    if reply.status != 201 or not token:
        raise RuntimeError(f"POST /auth/tokens answered {reply.status}: {reply.body[:300]!r}")
    return token


def check(method: Method, path: str) -> None:
    """One request first: a method that does not authenticate would measure 401s."""
    conn = http.client.HTTPConnection(HOST, method.port, timeout=30)
    try:
        reply = send(conn, Call("GET", path, {**method.headers, "Accept": "text/plain"}))
    finally:
        conn.close()
    if reply.status != 200:
        raise RuntimeError(f"{method.title}: GET {path} answered {reply.status}: {reply.body!r}")


def measure(method: Method, path: str, args: argparse.Namespace) -> Measurement:
    print(f"  {method.title}: {args.requests} requests ...", flush=True)
    call = Call("GET", path, {**method.headers, "Accept": "text/plain"})
    return load(
        method.port,
        call,
        requests=args.requests,
        concurrency=args.concurrency,
        processes=max(1, min(args.client_processes, args.concurrency)),
        warmup=args.warmup,
    )


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def combined(runs: list[Measurement]) -> Measurement:
    """The rounds of one method as one measurement (rate: all requests over all their time)."""
    return Measurement(
        [lat for m in runs for lat in m.latencies],
        sum(m.errors for m in runs),
        next((m.first_error for m in runs if m.first_error), ""),
        sum(m.elapsed for m in runs),
    )


def report(results: dict[str, list[Measurement]], baseline: str) -> None:
    base = combined(results[baseline]).rate
    rates = [m.rate for m in results[baseline]]
    spread = (max(rates) - min(rates)) / base if base else math.nan
    head = f"{'method':<28} {'n':>6} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6}  result"
    print()
    print(head)
    print("-" * len(head))
    for title, runs in results.items():
        m = combined(runs)
        ratio = m.rate / base if base else math.nan
        verdict = "-" if title == baseline else ("PASS" if ratio >= TARGET_RATIO else "MISS")
        print(
            f"{title:<28} {len(m.latencies):>6} {m.rate:>8.1f} {_ms(m.percentile_ms(50)):>7} "
            f"{_ms(m.percentile_ms(99)):>7} {ratio:>6.2f}  {verdict}"
        )
        if m.errors:
            print(f"  ! {m.errors} failed requests (first: {m.first_error})")
    print()
    print(
        f"ratio = req/s / req/s with no authentication; every method measured once per round, "
        f"the order rotating, {len(rates)} rounds; the unauthenticated rounds ranged "
        f"{min(rates):.0f}..{max(rates):.0f} req/s ({spread:.0%} of their mean: the noise "
        f"of this machine); target >= {TARGET_RATIO} once warm."
    )


def benchmark(args: argparse.Namespace, tmp: Path, processes: Processes) -> None:
    slapd = start_directory(tmp)
    issuer = IdentityProvider()
    try:
        extra = settings(slapd, issuer)
        node = start_node(tmp, processes, settings=extra)
        create_computes(node, 1)
        wait_active(node, timeout=60)
        path = node.computes[0]
        env = {**_bench_env(tmp / "data"), **extra}
        unchecked = start_unchecked(tmp, env, processes)
        person = PEOPLE_ENTRIES[0]  # in group physics: an admin here, so it sees the compute
        claims = issuer.claims(exp=int(time.time()) + 3600, eduperson_entitlement=[ADMIN_GROUP])
        methods = [
            Method("Basic, local user", node.headers, node.port),
            Method("Basic, LDAP user", basic(person.uid, person.password), node.port),
            Method(
                "Bearer JWT (OIDC)", {"Authorization": f"Bearer {issuer.token(claims)}"}, node.port
            ),
            Method(
                "X-Auth-Token", {"X-Auth-Token": issue_token(node.port, node.headers)}, node.port
            ),
        ]
        baseline_method = Method("no authentication", node.headers, unchecked)
        for method in (baseline_method, *methods):
            check(method, path)
        print(
            f"slapd {slapd.ldap_uri}, issuer {issuer.issuer}, nimbo up on {node.port}, "
            f"unchecked app on {unchecked}; {args.concurrency} connections, "
            f"{args.warmup} warm-up requests each",
            flush=True,
        )
        results: dict[str, list[Measurement]] = {m.title: [] for m in (baseline_method, *methods)}
        for number in range(1, args.rounds + 1):
            print(f"round {number} of {args.rounds}", flush=True)
            order = [baseline_method, *methods]
            shift = (number - 1) % len(order)  # each method leads a round in turn
            for method in order[shift:] + order[:shift]:
                results[method.title].append(measure(method, path, args))
        report(results, baseline_method.title)
        print(f"(compute {path}; LDAP user {person.uid}; JWT claims {json.dumps(claims)})")
    finally:
        issuer.stop()
        slapd.stop()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument(
        "--requests", type=int, default=None, help="per method and round (default 1500)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every method")
    parser.add_argument("--concurrency", type=int, default=4, help="keep-alive connections")
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=100, help="requests per connection first")
    parser.add_argument("--quick", action="store_true", help="300 requests per method and round")
    args = parser.parse_args(argv)
    args.requests = args.requests or (300 if args.quick else 1500)
    return args


def main(argv: list[str] | None = None) -> int:
    return run_benchmark("nimbo-bench-auth-", benchmark, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
