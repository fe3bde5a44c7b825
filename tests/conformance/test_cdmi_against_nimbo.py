"""The CDMI suite against our own gateway over real HTTP (CDMI root ``/cdmi/``), with a second
local user for the ACL checks: every MUST passes, none is skipped, nothing is left behind."""

from __future__ import annotations

import io
import json

import pytest

from conformance.cdmi import SUITE
from conformance.framework import Level, Outcome, Report, Runner, Settings
from conformance.http import Client, Credentials
from conformance.report import write_summary
from tests.conformance.conftest import LiveNimbo

pytestmark = [pytest.mark.libvirt, pytest.mark.redis]

SECOND_USER = "alice"  # a plain user of make_node, with the same password as root


def run(live: LiveNimbo, *, second: bool = True, read_only: bool = False) -> Report:
    root = live.url + "cdmi/"
    client = Client(root, Credentials(user=live.user, password=live.password))
    peers = {"user2": Client(root, Credentials(user=SECOND_USER, password=live.password))} \
        if second else {}
    settings = Settings(base_url=root, prefix="nimbo-conformance-cdmi-selftest",
                        read_only=read_only, poll_timeout=5, poll_interval=0.05)
    return Runner(SUITE, settings, client, peers=peers).run()


def summary(report: Report) -> str:
    out = io.StringIO()
    write_summary(report, out, verbose=True)
    return out.getvalue()


def test_every_must_passes(live_nimbo: LiveNimbo) -> None:
    report = run(live_nimbo)
    text = summary(report)
    print(text)
    failed = [r.name for r in report.results
              if r.outcome is Outcome.FAILED and r.check.level is Level.MUST]
    assert failed == [], text
    skipped = [r.name for r in report.results
               if r.outcome is Outcome.SKIPPED and r.check.level is Level.MUST]
    assert skipped == [], text
    assert report.conformant
    assert not report.cleanup_errors
    assert live_nimbo.node.request("GET", "/cdmi/nimbo-conformance-cdmi-selftest/",
                                   headers={"X-CDMI-Specification-Version": "1.1.1"}
                                   ).status_code == 404


def test_without_a_second_user_the_acl_checks_are_skipped(live_nimbo: LiveNimbo) -> None:
    report = Runner(SUITE, Settings(base_url=live_nimbo.url + "cdmi/", only=("CDMI-ACL",)),
                    Client(live_nimbo.url + "cdmi/", Credentials(
                        user=live_nimbo.user, password=live_nimbo.password))).run()
    assert report.results and all(r.outcome is Outcome.SKIPPED for r in report.results)
    assert all("--user2" in r.message for r in report.results)


def test_read_only_run_creates_nothing(live_nimbo: LiveNimbo) -> None:
    report = run(live_nimbo, read_only=True)
    assert report.conformant, summary(report)
    ran = [r for r in report.results if r.outcome is Outcome.PASSED]
    assert ran and all(not r.check.writes for r in ran)
    root = live_nimbo.node.request("GET", "/cdmi/", headers={
        "X-CDMI-Specification-Version": "1.1.1"})
    assert json.loads(root.get_data())["children"] == []
