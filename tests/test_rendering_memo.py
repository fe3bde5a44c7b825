"""The view's memo of entity renderings: served again only for the very same model object."""

from __future__ import annotations

import copy
import json

import pytest

from occi import infrastructure as infra
from occi.core import Entity, Link, RenderContext, Resource
from occi.http import views
from occi.http.views import RenderingMemo
from occi.rendering import Rendered
from occi.rendering.json import JsonRenderer, entity_text
from occi.rendering.negotiation import renderer_for

CTX = RenderContext(base_url="http://gw.example:8787/")


class Counting:
    """The text/plain renderer, counting what it renders."""

    def __init__(self, media_type: str = "text/plain") -> None:
        self.inner = renderer_for(media_type)
        self.media_type = self.inner.media_type
        self.rendered = 0

    def entity(self, entity: Resource, ctx: RenderContext) -> Rendered:
        self.rendered += 1
        return self.inner.entity(entity, ctx)


def _compute(entity_id: str, title: str = "vm") -> Resource:
    return Resource(
        id=entity_id,
        kind=infra.COMPUTE,
        actions=list(infra.COMPUTE.actions[:1]),  # an action link: an absolute URL
        attributes={"occi.core.id": f"urn:uuid:{entity_id}", "occi.core.title": title},
    )


def test_the_same_object_is_rendered_once_per_media_type_and_base_url() -> None:
    memo, plain, json = RenderingMemo(16, 16), Counting(), Counting("application/occi+json")
    vm = _compute("a")
    first = memo.entity(plain, vm, CTX)  # type: ignore[arg-type]
    assert memo.entity(plain, vm, CTX) is first  # type: ignore[arg-type]
    assert plain.rendered == 1
    assert first.body == plain.inner.entity(vm, CTX).body
    memo.entity(json, vm, CTX)  # type: ignore[arg-type]
    elsewhere = memo.entity(plain, vm, RenderContext(base_url="https://other:443/"))  # type: ignore[arg-type]
    assert (plain.rendered, json.rendered) == (2, 1)
    assert b"<https://other:443/compute/a?action=" in elsewhere.body
    assert b"<http://gw.example:8787/compute/a?action=" in first.body


def test_another_object_is_rendered_even_when_equal_or_at_a_reused_id() -> None:
    memo, plain = RenderingMemo(16, 16), Counting()
    vm = _compute("a")
    memo.entity(plain, vm, CTX)  # type: ignore[arg-type]
    twin = copy.deepcopy(vm)  # what the entity cache holds after a write: a new object
    twin.attributes["occi.core.title"] = "renamed"
    assert b"renamed" in memo.entity(plain, twin, CTX).body  # type: ignore[arg-type]
    assert plain.rendered == 2


def test_at_capacity_everything_is_dropped_and_nothing_grows_past_it() -> None:
    memo, plain = RenderingMemo(3, 3), Counting()
    kept = [_compute(str(i)) for i in range(10)]
    for vm in kept:
        memo.entity(plain, vm, CTX)  # type: ignore[arg-type]
    assert len(memo._entries) <= 3
    memo.entity(plain, kept[-1], CTX)  # type: ignore[arg-type]
    assert plain.rendered == 10  # the newest survived the drop


def _storagelink(entity_id: str, source: str) -> Link:
    return Link(
        id=entity_id,
        kind=infra.STORAGELINK,
        source=f"/compute/{source}",
        target="/storage/disk",
        attributes={"occi.core.id": f"urn:uuid:{entity_id}"},
    )


def test_a_json_listing_is_joined_from_member_texts_made_once_per_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    memo, json_renderer = RenderingMemo(16, 16), JsonRenderer()
    made: list[str] = []
    monkeypatch.setattr(views, "entity_text", lambda e: made.append(e.id) or entity_text(e))
    members: list[Entity] = [_compute("a"), _compute("b"), _storagelink("l", "a")]

    first = memo.collection(json_renderer, members, CTX)
    again = memo.collection(json_renderer, members[1:], CTX)

    assert first.body == json_renderer.collection(members, CTX).body
    assert json.loads(first.body) == {
        "resources": [json.loads(entity_text(m)) for m in members[:2]],
        "links": [json.loads(entity_text(members[2]))],
    }
    assert again.body == json_renderer.collection(members[1:], CTX).body
    assert made == ["a", "b", "l"]  # each object's text made once, for both listings
    twin = copy.deepcopy(members[0])  # after a write: a new object, whatever its id
    twin.attributes["occi.core.title"] = "renamed"
    assert b'"renamed"' in memo.collection(json_renderer, [twin], CTX).body
    assert made == ["a", "b", "l", "a"]


def test_other_listings_are_rendered_afresh_and_texts_stay_under_capacity() -> None:
    memo, plain = RenderingMemo(16, 2), renderer_for("text/plain")
    members: list[Entity] = [_compute(str(i)) for i in range(5)]
    listing = memo.collection(plain, members, CTX)
    assert listing.body == plain.collection(members, CTX).body
    assert memo._texts == {}
    memo.collection(JsonRenderer(), members, CTX)
    assert len(memo._texts) <= 2
