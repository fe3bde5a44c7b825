"""The OCCI suite against our own gateway, over real HTTP, in every rendering: every MUST
passes (SHOULD/MAY results are shown on failure of the test)."""

from __future__ import annotations

import io

import pytest

from conformance.framework import Level, Outcome, Runner, Settings
from conformance.http import Client, Credentials
from conformance.occi import DEFAULT_RENDERINGS, SUITE
from conformance.report import write_summary
from tests.conformance.conftest import LiveNimbo

pytestmark = [pytest.mark.libvirt, pytest.mark.redis]


def test_every_must_passes_in_every_rendering(live_nimbo: LiveNimbo) -> None:
    client = Client(live_nimbo.url, Credentials(user=live_nimbo.user,
                                                password=live_nimbo.password))
    settings = Settings(base_url=live_nimbo.url, renderings=DEFAULT_RENDERINGS,
                        prefix="nimbo-conformance-selftest", poll_timeout=20,
                        poll_interval=0.05)
    report = live_nimbo.run(lambda: Runner(SUITE, settings, client).run())
    summary = io.StringIO()
    write_summary(report, summary, verbose=True)
    print(summary.getvalue())
    failed = [r.name for r in report.results
              if r.outcome is Outcome.FAILED and r.check.level is Level.MUST]
    assert failed == [], summary.getvalue()
    assert report.conformant
    assert not report.cleanup_errors
    # the OS template a save made is its owner's to delete through the query interface
    assert report.left_behind == []
    ran = {r.variant for r in report.results if r.variant}
    assert ran == set(DEFAULT_RENDERINGS)
    skipped = [r.name for r in report.results
               if r.outcome is Outcome.SKIPPED and r.check.level is Level.MUST]
    assert skipped == [], summary.getvalue()


def test_read_only_run_creates_nothing(live_nimbo: LiveNimbo) -> None:
    client = Client(live_nimbo.url, Credentials(user=live_nimbo.user,
                                                password=live_nimbo.password))
    settings = Settings(base_url=live_nimbo.url, renderings=DEFAULT_RENDERINGS, read_only=True)
    report = Runner(SUITE, settings, client).run()
    assert report.conformant
    ran = [r for r in report.results if r.outcome is Outcome.PASSED]
    assert ran and all(not r.check.writes for r in ran)
    assert live_nimbo.node.count_entities() == 0
