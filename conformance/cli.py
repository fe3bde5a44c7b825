"""``nimbo-conformance occi|cdmi URL [options]``: run a suite against an endpoint.

Exit status: 0 when every MUST passed, 1 when one failed, 2 on bad usage, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from conformance.framework import Result, Runner, Settings, Suite
from conformance.http import Client, Credentials
from conformance.report import write_json, write_junit, write_summary

SUITES = ("occi", "cdmi")
"""Suite names; suite NAME is the module ``conformance.NAME`` and its ``SUITE``."""


def load_suite(name: str) -> ModuleType:
    """The module of suite ``name``: it defines ``SUITE`` (a Suite) and may define
    ``DEFAULT_RENDERINGS`` (the renderings of a run without --rendering)."""
    module = importlib.import_module(f"conformance.{name}")
    if not isinstance(getattr(module, "SUITE", None), Suite):
        raise ImportError(f"conformance.{name} defines no SUITE")
    return module


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nimbo-conformance",
        description="Black-box conformance checks of an OCCI 1.2 or CDMI 1.1.1 endpoint.")
    p.add_argument("suite", choices=SUITES, help="which standard to check")
    p.add_argument("url", help="base URL of the endpoint, e.g. https://cloud.example/")
    auth = p.add_argument_group("credentials (at most one kind)")
    auth.add_argument("--user", help="HTTP Basic user")
    auth.add_argument("--password", help="HTTP Basic password")
    auth.add_argument("--token", help="sent as X-Auth-Token")
    auth.add_argument("--bearer", help="JWT sent as Authorization: Bearer")
    auth.add_argument("--cert", help="client certificate (PEM) for TLS")
    auth.add_argument("--key", help="private key of --cert (PEM), if not in the same file")
    second = p.add_argument_group("a second user (CDMI ACL checks; skipped without one)")
    second.add_argument("--user2", help="HTTP Basic user")
    second.add_argument("--password2", help="HTTP Basic password of --user2")
    second.add_argument("--token2", help="sent as X-Auth-Token")
    second.add_argument("--bearer2", help="JWT sent as Authorization: Bearer")
    second.add_argument("--principal2", help="the second user's name in ACLs (default: "
                        "--user2)")
    p.add_argument("--insecure", action="store_true", help="do not verify the server's TLS "
                   "certificate")
    p.add_argument("--rendering", help="comma-separated media types to check (default: the "
                   "suite's, e.g. text/plain,text/occi,application/occi+json for OCCI)")
    p.add_argument("--read-only", action="store_true", help="create and change nothing")
    p.add_argument("--prefix", help="name prefix of everything the run creates "
                   "(default nimbo-conformance-<random>)")
    p.add_argument("--only", action="append", default=[], metavar="ID_PREFIX",
                   help="run only checks whose id starts with this (repeatable)")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds to wait for asynchronous state changes (default 120)")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the JSON report here")
    p.add_argument("--junit", type=Path, metavar="FILE", help="write a JUnit XML report here")
    p.add_argument("--list", action="store_true", help="list the checks and exit")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print reasons of every result and the evidence of failures")
    return p


def credentials(args: argparse.Namespace) -> Credentials:
    kinds = [args.user is not None, args.token is not None, args.bearer is not None,
             args.cert is not None]
    if sum(kinds) > 1:
        raise SystemExit("nimbo-conformance: give one of --user, --token, --bearer, --cert")
    if args.password is not None and args.user is None:
        raise SystemExit("nimbo-conformance: --password needs --user")
    return Credentials(user=args.user, password=args.password, token=args.token,
                       bearer=args.bearer, cert=args.cert, key=args.key)


def second_credentials(args: argparse.Namespace) -> Credentials | None:
    """The second user's credentials, None when none are given."""
    kinds = [args.user2 is not None, args.token2 is not None, args.bearer2 is not None]
    if sum(kinds) > 1:
        raise SystemExit("nimbo-conformance: give one of --user2, --token2, --bearer2")
    if args.password2 is not None and args.user2 is None:
        raise SystemExit("nimbo-conformance: --password2 needs --user2")
    if not any(kinds):
        return None
    return Credentials(user=args.user2, password=args.password2, token=args.token2,
                       bearer=args.bearer2)


def list_checks(suite: Suite) -> None:
    for check in suite.checks:
        print(f"{check.id:<28} {check.level.value:<6} {check.clause:<40} {check.title}")
    print(f"{len(suite.checks)} checks")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        module = load_suite(args.suite)
    except ImportError as exc:
        print(f"nimbo-conformance: suite {args.suite} is not available: {exc}", file=sys.stderr)
        return 2
    suite: Suite = module.SUITE
    if args.list:
        list_checks(suite)
        return 0
    default = tuple(getattr(module, "DEFAULT_RENDERINGS", ()))
    renderings = tuple(r.strip() for r in args.rendering.split(",") if r.strip()) \
        if args.rendering else default
    settings = Settings(base_url=args.url, renderings=renderings, read_only=args.read_only,
                        prefix=args.prefix or f"nimbo-conformance-{secrets.token_hex(4)}",
                        poll_timeout=args.timeout, only=tuple(args.only))
    client = Client(args.url, credentials(args), verify=not args.insecure)
    peers: dict[str, Client] = {}
    second = second_credentials(args)
    if second is not None:
        peers["user2"] = Client(args.url, second, verify=not args.insecure,
                                principal=args.principal2)

    def progress(result: Result) -> None:
        print(f"  {result.outcome.value:<7} {result.name}", file=sys.stderr, flush=True)

    try:
        report = Runner(suite, settings, client, peers=peers).run(on_result=progress)
    finally:
        client.close()
        for peer in peers.values():
            peer.close()
    write_summary(report, sys.stdout, verbose=args.verbose)
    if args.json:
        write_json(report, args.json)
    if args.junit:
        write_junit(report, args.junit)
    return report.exit_status


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
