"""Each check can fail: the suite against a tiny OCCI server of its own (tests/conformance/
broken_occi.py, text/plain only), first unbroken (the checks under test pass), then with one
fault at a time (the check aimed at fails, with evidence)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.framework import Report, Runner, Settings
from conformance.http import Client, Credentials
from conformance.occi import SUITE
from tests.conformance.broken_occi import BREAKS, make_app
from tests.conformance.faults import assert_failed, assert_passed, unaimed_groups
from tests.conformance.servers import serving

# fault -> the check that must fail because of it (at least one per check group)
CASES = {
    "qi-500": "OCCI-HTTP-QI-001",
    "well-known-differs": "OCCI-HTTP-QI-003",
    "entity-bound": "OCCI-HTTP-QI-004",
    "user-mixin-refused": "OCCI-HTTP-QI-005",
    "no-compute-actions": "OCCI-INFRA-MODEL-002",
    "qi-filter-ignored": "OCCI-HTTP-FLT-001",
    "wrong-content-type": "OCCI-HTTP-NEG-001",
    "no-406": "OCCI-HTTP-NEG-002",
    "uri-list-entity": "OCCI-TEXT-URI-002",
    "no-ok-body": "OCCI-TEXT-OCCI-001",
    "no-server-version": "OCCI-HTTP-VER-001",
    "no-501": "OCCI-HTTP-VER-003",
    "no-challenge": "OCCI-HTTP-SEC-001",
    "create-no-location": "OCCI-HTTP-ENT-001",
    "title-dropped": "OCCI-HTTP-ENT-002",
    "state-bogus": "OCCI-INFRA-ENT-003",
    "never-active": "OCCI-INFRA-ENT-004",
    "update-ignored": "OCCI-HTTP-ENT-006",
    "put-drops-links": "OCCI-HTTP-ENT-007",
    "delete-500": "OCCI-HTTP-ENT-008",
    "missing-size-ok": "OCCI-CORE-ERR-004",
    "not-found-200": "OCCI-HTTP-ENT-011",
    "links-not-rendered": "OCCI-INFRA-LINK-001",
    "stop-ignored": "OCCI-INFRA-ACT-001",
    "action-state-ignored": "OCCI-HTTP-ACT-003",
    "undefined-action-ok": "OCCI-HTTP-ACT-005",
    "mixin-post-ignored": "OCCI-HTTP-MIX-001",
    "mixin-put-appends": "OCCI-HTTP-MIX-002",
    "filter-ignored": "OCCI-HTTP-FLT-002",
    "no-413": "OCCI-HTTP-PAG-003",
    "bad-json-500": "OCCI-JSON-ERR-006",
    "unterminated-quote-ok": "OCCI-TEXT-ERR-005",
    "put-create-404": "OCCI-HTTP-ENT-012",
    "collection-action-everyone": "OCCI-HTTP-ACT-008",
    "save-no-template": "OCCI-INFRA-ACT-009",
    "ssh-key-dropped": "OCCI-INFRA-CTX-001",
    "userdata-dropped": "OCCI-INFRA-CTX-002",
}


def run(url: str, only: tuple[str, ...] = ()) -> Report:
    client = Client(url, Credentials(user="toy", password="toy"))
    settings = Settings(base_url=url, renderings=("text/plain",), prefix="nimbo-conformance-toy",
                        poll_timeout=2, poll_interval=0.01, only=only)
    return Runner(SUITE, settings, client).run()


@pytest.fixture(scope="module")
def unbroken() -> Iterator[Report]:
    with serving(make_app()) as url:
        yield run(url)


def test_every_fault_is_known() -> None:
    assert set(CASES) == BREAKS


def test_every_group_has_a_failing_case() -> None:
    assert unaimed_groups(SUITE, CASES) == set()


@pytest.mark.parametrize("check_id", sorted(set(CASES.values())))
def test_unbroken_server_passes_the_checks_under_test(unbroken: Report, check_id: str) -> None:
    assert_passed(unbroken, check_id)


def test_unbroken_server_leaves_nothing_behind(unbroken: Report) -> None:
    assert unbroken.cleanup_errors == []
    assert unbroken.left_behind == []  # the toy lets the saved template go through the QI


@pytest.mark.parametrize(("fault", "check_id"), sorted(CASES.items()))
def test_a_fault_fails_its_check(fault: str, check_id: str) -> None:
    app = make_app([fault])
    with serving(app) as url:
        report = run(url, only=(check_id,))
    assert_failed(report, fault, check_id)
    if fault not in ("create-no-location", "delete-500"):  # nothing to be done about these
        assert not app.things, "the run left entities behind"
    assert not app.user_mixins, "the run left user mixins behind"
    assert not app.saved, "the run left saved OS templates behind"
