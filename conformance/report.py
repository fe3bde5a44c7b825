"""Report writers: a summary table for people, JSON for programs, JUnit XML for CI systems.

JSON shape (``as_json``)::

    {"suite": "occi", "title": ..., "target": URL, "started": ISO-8601, "duration": s,
     "renderings": [...], "read_only": bool, "prefix": ..., "interrupted": bool,
     "conformant": bool, "totals": {"MUST": {"passed": n, "failed": n, "skipped": n}, ...},
     "results": [{"id", "name", "variant", "group", "level", "clause", "title", "outcome",
                  "message", "duration", "evidence": [{"request": {...}, "response": {...}}]}],
     "cleanup_errors": [...], "left_behind": [...]}

JUnit: one ``<testcase>`` per run of a check (``classname`` = suite.group, ``name`` = id,
variant and title); failures of every level are ``<failure type="MUST|SHOULD|MAY">`` with the
evidence as text; skipped checks carry ``<skipped message="why"/>``; what the run left behind
is a ``left_behind`` property each.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, TextIO

from conformance.framework import Level, Outcome, Report, Result

WIDTH = 72
"""Column of titles in the summary table is cut to fit this many characters."""


def _row(result: Result) -> str:
    label = {Outcome.PASSED: "pass", Outcome.FAILED: "FAIL", Outcome.SKIPPED: "skip"}
    return f"{result.name:<44} {result.check.level.value:<6} {label[result.outcome]:<6} " \
           f"{result.check.title}"


def write_summary(report: Report, stream: TextIO, *, verbose: bool = False) -> None:
    """The table (one line per run of a check), reasons of failures and skips, totals."""
    stream.write(f"{report.title} conformance of {report.settings.base_url}\n\n")
    stream.write(f"{'check':<44} {'level':<6} {'result':<6} title\n")
    for result in report.results:
        stream.write(_row(result) + "\n")
        if result.outcome is Outcome.FAILED or (verbose and result.message):
            for line in result.message.splitlines():
                stream.write(f"    {line}\n")
            if verbose and result.evidence:
                for exchange in result.evidence:
                    for line in exchange.as_text().splitlines():
                        stream.write(f"      {line}\n")
        elif result.outcome is Outcome.SKIPPED:
            stream.write(f"    skipped: {result.message}\n")
    stream.write("\n")
    totals = report.totals()
    for level in Level:
        counts = totals[level]
        stream.write(f"{level.value:<6} {counts[Outcome.PASSED]:>4} passed "
                     f"{counts[Outcome.FAILED]:>4} failed {counts[Outcome.SKIPPED]:>4} skipped\n")
    for error in report.cleanup_errors:
        stream.write(f"cleanup: {error}\n")
    for kept in report.left_behind:
        stream.write(f"left behind: {kept}\n")
    if report.interrupted:
        stream.write("interrupted: not every check ran\n")
    verdict = "every MUST passed" if report.conformant else "NOT conformant: a MUST failed"
    if report.interrupted:
        verdict = "interrupted"
    stream.write(f"{report.suite}: {verdict}\n")


def as_json(report: Report) -> dict[str, Any]:
    totals = report.totals()
    return {
        "suite": report.suite,
        "title": report.title,
        "target": report.settings.base_url,
        "started": report.started.isoformat(),
        "duration": round(report.duration, 3),
        "renderings": list(report.settings.renderings),
        "read_only": report.settings.read_only,
        "prefix": report.settings.prefix,
        "interrupted": report.interrupted,
        "conformant": report.conformant,
        "totals": {level.value: {o.value: totals[level][o] for o in Outcome} for level in Level},
        "results": [_result_json(r) for r in report.results],
        "cleanup_errors": list(report.cleanup_errors),
        "left_behind": list(report.left_behind),
    }


def _result_json(result: Result) -> dict[str, Any]:
    check = result.check
    return {
        "id": check.id,
        "name": result.name,
        "variant": result.variant,
        "group": check.group,
        "level": check.level.value,
        "clause": check.clause,
        "title": check.title,
        "outcome": result.outcome.value,
        "message": result.message,
        "duration": round(result.duration, 3),
        "evidence": [e.as_dict() for e in result.evidence],
    }


def write_json(report: Report, path: Path) -> None:
    path.write_text(json.dumps(as_json(report), indent=2) + "\n", encoding="utf-8")


def as_junit(report: Report) -> ET.ElementTree[ET.Element]:
    results = report.results
    failures = sum(r.outcome is Outcome.FAILED for r in results)
    skipped = sum(r.outcome is Outcome.SKIPPED for r in results)
    root = ET.Element("testsuites", name=f"{report.suite} conformance", tests=str(len(results)),
                      failures=str(failures), errors="0", skipped=str(skipped),
                      time=f"{report.duration:.3f}")
    suite = ET.SubElement(root, "testsuite", name=report.suite, tests=str(len(results)),
                          failures=str(failures), errors="0", skipped=str(skipped),
                          time=f"{report.duration:.3f}",
                          timestamp=report.started.strftime("%Y-%m-%dT%H:%M:%S"),
                          hostname=report.settings.base_url)
    properties = ET.SubElement(suite, "properties")
    for name, value in (("target", report.settings.base_url),
                        ("renderings", ",".join(report.settings.renderings)),
                        ("read_only", str(report.settings.read_only).lower()),
                        ("conformant", str(report.conformant).lower())):
        ET.SubElement(properties, "property", name=name, value=value)
    for kept in report.left_behind:
        ET.SubElement(properties, "property", name="left_behind", value=kept)
    for result in results:
        _testcase(suite, report.suite, result)
    ET.indent(root)
    return ET.ElementTree(root)


def _testcase(parent: ET.Element, suite: str, result: Result) -> None:
    check = result.check
    case = ET.SubElement(parent, "testcase", classname=f"{suite}.{check.group}",
                         name=f"{result.name} {check.title}", time=f"{result.duration:.3f}")
    if result.outcome is Outcome.FAILED:
        failure = ET.SubElement(case, "failure", message=result.message, type=check.level.value)
        evidence = "\n\n".join(e.as_text() for e in result.evidence)
        failure.text = (f"{check.level.value} {check.clause}\n{result.message}\n\n"
                        f"{evidence}").rstrip()
    elif result.outcome is Outcome.SKIPPED:
        ET.SubElement(case, "skipped", message=result.message)


def write_junit(report: Report, path: Path) -> None:
    as_junit(report).write(path, encoding="utf-8", xml_declaration=True)
