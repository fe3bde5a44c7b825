"""Each CDMI check group can fail: the suite against a tiny CDMI server of its own
(tests/conformance/broken_cdmi.py), first unbroken (the checks under test pass), then with one
fault at a time (the check aimed at fails, with evidence)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.cdmi import SUITE
from conformance.cli import main
from conformance.framework import Report, Runner, Settings
from conformance.http import Client, Credentials
from tests.conformance.broken_cdmi import BREAKS, make_app
from tests.conformance.faults import assert_failed, assert_passed, unaimed_groups
from tests.conformance.servers import serving

# fault -> the check that must fail because of it (at least one per check group)
CASES = {
    "version-not-echoed": "CDMI-VER-001",
    "unsupported-version-ok": "CDMI-VER-004",
    "wrong-content-type": "CDMI-MT-001",
    "no-406": "CDMI-MT-004",
    "capability-booleans": "CDMI-CAP-002",
    "value-range-ignored": "CDMI-CAP-020",
    "children-range-ignored": "CDMI-CAP-012",
    "children-missing": "CDMI-CON-002",
    "no-301": "CDMI-CON-005",
    "slashless-container-ok": "CDMI-CON-006",
    "delete-nonempty-409": "CDMI-CON-009",
    "base64-garbled": "CDMI-OBJ-004",
    "update-drops-mimetype": "CDMI-OBJ-006",
    "bad-base64-ok": "CDMI-OBJ-008",
    "plain-wrong-type": "CDMI-HTTP-001",
    "no-206": "CDMI-HTTP-003",
    "bad-crc": "CDMI-ID-002",
    "container-by-id-404": "CDMI-ID-004",
    "corrupt-id-found": "CDMI-ID-005",
    "fields-ignored": "CDMI-FLD-001",
    "metadata-merged": "CDMI-MD-002",
    "short-times": "CDMI-MD-005",
    "size-settable": "CDMI-MD-006",
    "bad-json-500": "CDMI-ERR-001",
    "acl-ignored": "CDMI-ACL-001",
    "acl-grant-ignored": "CDMI-ACL-002",
    "grant-allows-write": "CDMI-ACL-003",
    "copy-same-id": "CDMI-COPY-001",
    "container-copy-shallow": "CDMI-COPY-002",
    "move-keeps-source": "CDMI-MOVE-001",
    "container-move-drops-children": "CDMI-MOVE-002",
    "snapshot-live": "CDMI-SNAP-001",
    "no-snapshots-field": "CDMI-SNAP-002",
}


def run(url: str, only: tuple[str, ...] = ()) -> Report:
    client = Client(url, Credentials(user="toy", password="toy"))
    peers = {"user2": Client(url, Credentials(user="toy2", password="toy2"))}
    settings = Settings(base_url=url, prefix="nimbo-conformance-toy", only=only)
    return Runner(SUITE, settings, client, peers=peers).run()


@pytest.fixture(scope="module")
def unbroken() -> Iterator[tuple[Report, int]]:
    app = make_app()
    with serving(app) as url:
        yield run(url), len(app.nodes)


def test_every_fault_is_known() -> None:
    assert set(CASES) == BREAKS


def test_every_group_has_a_failing_case() -> None:
    assert unaimed_groups(SUITE, CASES) == set()


@pytest.mark.parametrize("check_id", sorted(set(CASES.values())))
def test_unbroken_server_passes_the_checks_under_test(unbroken: tuple[Report, int],
                                                      check_id: str) -> None:
    assert_passed(unbroken[0], check_id)


def test_unbroken_server_leaves_nothing_behind(unbroken: tuple[Report, int]) -> None:
    report, nodes = unbroken
    assert report.cleanup_errors == []
    assert nodes == 1  # the root container only


@pytest.mark.parametrize(("fault", "check_id"), sorted(CASES.items()))
def test_a_fault_fails_its_check(fault: str, check_id: str) -> None:
    app = make_app([fault])
    with serving(app) as url:
        report = run(url, only=(check_id,))
    assert assert_failed(report, fault, check_id).evidence
    assert list(app.nodes) == [""], "the run left objects behind"


def test_command_line_second_user(tmp_path: Path) -> None:
    """--user2/--password2 reach the ACL checks; without them they are skipped."""
    with serving(make_app()) as url:
        base = ["cdmi", url, "--user", "toy", "--password", "toy", "--only", "CDMI-ACL"]
        with_second = tmp_path / "with.json"
        assert main([*base, "--user2", "toy2", "--password2", "toy2",
                     "--json", str(with_second)]) == 0
        without = tmp_path / "without.json"
        assert main([*base, "--json", str(without)]) == 0
    ran = json.loads(with_second.read_text())["results"]
    assert ran and all(r["outcome"] == "passed" for r in ran)
    skipped = json.loads(without.read_text())["results"]
    assert skipped and all(r["outcome"] == "skipped" and "--user2" in r["message"]
                           for r in skipped)
    with pytest.raises(SystemExit):
        main([*base, "--password2", "x"])
