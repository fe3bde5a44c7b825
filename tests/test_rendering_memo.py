"""The view's memo of entity renderings: served again only for the very same model object."""

from __future__ import annotations

import copy

from occi import infrastructure as infra
from occi.core import RenderContext, Resource
from occi.http.views import RenderingMemo
from occi.rendering import Rendered
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
    memo, plain, json = RenderingMemo(16), Counting(), Counting("application/occi+json")
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
    memo, plain = RenderingMemo(16), Counting()
    vm = _compute("a")
    memo.entity(plain, vm, CTX)  # type: ignore[arg-type]
    twin = copy.deepcopy(vm)  # what the entity cache holds after a write: a new object
    twin.attributes["occi.core.title"] = "renamed"
    assert b"renamed" in memo.entity(plain, twin, CTX).body  # type: ignore[arg-type]
    assert plain.rendered == 2


def test_at_capacity_everything_is_dropped_and_nothing_grows_past_it() -> None:
    memo, plain = RenderingMemo(3), Counting()
    kept = [_compute(str(i)) for i in range(10)]
    for vm in kept:
        memo.entity(plain, vm, CTX)  # type: ignore[arg-type]
    assert len(memo._entries) <= 3
    memo.entity(plain, kept[-1], CTX)  # type: ignore[arg-type]
    assert plain.rendered == 10  # the newest survived the drop
