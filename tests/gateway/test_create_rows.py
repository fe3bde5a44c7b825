"""A create writes its rows by Core (gateway.services.plans): the entity row it hands on is in
the session exactly as if it had been read back, every column set, and a change made to it in
the transaction is written."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from auth.principal import Principal
from gateway.services.quotas import Quotas
from gateway.store.models import EntityMixin, EntityRow, Operation
from tests.gateway.conftest import Node, entity_id

pytestmark = pytest.mark.redis


def _columns(row: EntityRow) -> dict[str, object]:
    """Column values, times as naive UTC (SQLite hands back what it stores: naive)."""
    values = {c.key: getattr(row, c.key) for c in inspect(EntityRow).column_attrs}
    for name, value in values.items():
        if isinstance(value, datetime) and value.tzinfo is not None:
            values[name] = value.astimezone(UTC).replace(tzinfo=None)
    return values


@pytest.mark.parametrize("kind", ["compute", "storage", "network"])
def test_the_new_row_is_persistent_whole_and_as_written(
    node: Node, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    seen: list[tuple[bool, set[str], dict[str, object]]] = []
    check = Quotas.check_created

    def spy(self: Quotas, session: Session, principal: Principal, rows: list[EntityRow]) -> None:
        for row in rows:
            state = inspect(row)
            seen.append((state.persistent, set(state.unloaded), _columns(row)))
        check(self, session, principal, rows)

    monkeypatch.setattr(Quotas, "check_created", spy)
    location = {"compute": node.create_compute, "storage": node.create_storage,
                "network": node.create_network}[kind]()

    [(persistent, unloaded, columns)] = seen
    assert persistent and unloaded == set()
    with node.store.session() as session:
        stored = session.get(EntityRow, entity_id(location))
        assert stored is not None
        assert _columns(stored) == columns
        mixins = session.scalars(select(EntityMixin.mixin)
                                 .where(EntityMixin.entity_id == stored.id)
                                 .order_by(EntityMixin.position)).all()
        assert len(mixins) == {"compute": 2, "storage": 0, "network": 1}[kind], mixins
        [op] = session.scalars(select(Operation).where(Operation.entity_id == stored.id)).all()
        assert (op.verb, op.status, op.host) == ("provision", "queued", stored.host)
        assert op.created_at is not None and op.params == {}


def test_a_change_to_the_new_row_in_the_transaction_is_written(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = Quotas.check_created

    def retitle(self: Quotas, session: Session, principal: Principal,
                rows: list[EntityRow]) -> None:
        for row in rows:
            row.state_message = "changed in the transaction"
        check(self, session, principal, rows)

    monkeypatch.setattr(Quotas, "check_created", retitle)
    location = node.create_compute()

    row = node.row(location)
    assert row is not None and row.state_message == "changed in the transaction"
