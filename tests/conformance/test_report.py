"""The report writers against golden files (tests/fixtures/conformance/): a fixed report with a
pass, a MUST failure with evidence, a SHOULD failure and a skip."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from conformance.framework import Check, Level, Outcome, Report, Result, Settings
from conformance.http import Exchange, Message
from conformance.report import as_json, as_junit, write_junit, write_summary
from tests.golden import assert_golden

GOLDEN = Path(__file__).resolve().parent.parent / "fixtures" / "conformance"


def _check(check_id: str, level: Level, title: str) -> Check:
    return Check(check_id, "OCCI 1.2 HTTP Protocol §9.1", level, title, "query-interface",
                 lambda ctx: None)


def fixed_report() -> Report:
    exchange = Exchange(
        Message(method="GET", url="http://cloud.example/-/",
                headers={"Accept": "text/plain", "Authorization": "<redacted>"}),
        Message(status=500, headers={"Content-Type": "text/plain"}, body="oops\n"))
    results = [
        Result(_check("X-001", Level.MUST, "GET /-/ answers 200"), None, Outcome.PASSED,
               duration=0.25),
        Result(_check("X-002", Level.MUST, "renders categories"), "text/occi", Outcome.FAILED,
               "GET http://cloud.example/-/: expected 200, got 500", [exchange], 0.5),
        Result(_check("X-003", Level.SHOULD, "lists its renderings"), None, Outcome.FAILED,
               "no Accept header in the answer", [], 0.125),
        Result(_check("X-004", Level.MAY, "paginates"), None, Outcome.SKIPPED,
               "--read-only: this check creates or changes resources"),
    ]
    return Report("occi", "OCCI 1.2",
                  Settings(base_url="http://cloud.example/", renderings=("text/plain",),
                           prefix="nimbo-conformance-test"),
                  started=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), duration=1.5,
                  results=results, cleanup_errors=["DELETE http://cloud.example/compute/1: 409"],
                  left_behind=["remove saved OS template http://cloud.example/os#saved: the "
                               "server refuses (403)"])


def test_json_report_matches_its_golden_file() -> None:
    document = as_json(fixed_report())
    assert document["conformant"] is False
    assert document["totals"]["MUST"] == {"passed": 1, "failed": 1, "skipped": 0}
    assert_golden(GOLDEN, "report.json", json.dumps(document, indent=2) + "\n")


def test_junit_report_matches_its_golden_file(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit(fixed_report(), path)
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == "2" and suite.get("skipped") == "1"
    assert_golden(GOLDEN, "junit.xml", path.read_bytes())


def test_junit_of_a_run_normalises_to_the_same_shape() -> None:
    report = fixed_report()
    report.started = datetime.now(UTC)
    report.duration = 42.0
    tree = as_junit(report)
    for element in tree.iter():
        for name in ("time", "timestamp"):
            if name in element.attrib:
                element.set(name, "0")
    assert len(list(tree.iter("testcase"))) == 4


def test_summary_lists_every_check_and_totals_per_level() -> None:
    stream = io.StringIO()
    write_summary(fixed_report(), stream)
    assert_golden(GOLDEN, "summary.txt", stream.getvalue())
