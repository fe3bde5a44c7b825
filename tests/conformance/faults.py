"""What the fault tables of the broken toy servers (test_broken_server.py,
test_cdmi_broken_server.py) are checked with: fault -> the check that must fail because of it."""

from __future__ import annotations

from conformance.framework import Outcome, Report, Result, Suite


def unaimed_groups(suite: Suite, cases: dict[str, str]) -> set[str]:
    """The check groups of ``suite`` no fault of ``cases`` aims at (there should be none)."""
    return {c.group for c in suite.checks} - {c.group for c in suite.checks
                                               if c.id in cases.values()}


def result_of(report: Report, check_id: str) -> Result:
    return next(r for r in report.results if r.check.id == check_id)


def assert_passed(report: Report, check_id: str) -> None:
    result = result_of(report, check_id)
    assert result.outcome is Outcome.PASSED, result.message


def assert_failed(report: Report, fault: str, check_id: str) -> Result:
    """The check ``fault`` aims at failed, saying why; the result."""
    result = result_of(report, check_id)
    assert result.outcome is Outcome.FAILED, (fault, result.outcome, result.message)
    assert result.message
    return result
