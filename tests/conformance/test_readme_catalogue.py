"""conformance/README.md's catalogue tables agree with the suites: every check is listed once,
with its level, clause and title as the suite declares them."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.framework import Suite

README = Path(__file__).resolve().parents[2] / "conformance" / "README.md"


def _rows() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) == 5 and cells[0].startswith(("OCCI-", "CDMI-")):
            assert cells[0] not in rows, f"{cells[0]} is listed twice"
            rows[cells[0]] = cells
    return rows


@pytest.mark.parametrize("name", ["occi", "cdmi"])
def test_catalogue_table_matches_the_suite(name: str) -> None:
    module = __import__(f"conformance.{name}", fromlist=["SUITE"])
    suite: Suite = module.SUITE
    rows = _rows()
    for check in suite.checks:
        assert check.id in rows, f"{check.id} is missing from README.md"
        _, level, clause, title, _ = rows[check.id]
        assert (level, clause, title) == (check.level.value, check.clause, check.title), check.id


def test_every_listed_check_exists() -> None:
    ids = {c.id for name in ("occi", "cdmi")
           for c in __import__(f"conformance.{name}", fromlist=["SUITE"]).SUITE.checks}
    assert set(_rows()) == ids
