"""application/occi+json (and its alias application/json): golden renderings, attribute
definitions, collections, and the parser (notes §4, §11)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from gateway.errors import ParseError
from occi import infrastructure as infra
from occi.core import Resource
from occi.rendering import Rendered
from occi.rendering.json import JsonParser, JsonRenderer, attribute_definition_object
from tests.rendering_samples import (
    COMPUTE_ID,
    CTX,
    DEBIAN,
    SMALL,
    assert_golden,
    compute,
    networkinterface,
    query_interface,
    storage,
    storagelink,
)

RENDERER = JsonRenderer()
PARSER = JsonParser()
INFRA = "http://schemas.ogf.org/occi/infrastructure#"

GOLDEN: dict[str, Callable[[], Rendered]] = {
    "compute.json": lambda: RENDERER.entity(compute(), CTX),
    "storagelink.json": lambda: RENDERER.entity(storagelink(), CTX),
    "collection.json": lambda: RENDERER.collection([compute(), storage()], CTX),
    "collection_mixed.json": lambda: RENDERER.collection([storage(), storagelink()], CTX),
    "collection_empty.json": lambda: RENDERER.collection([], CTX),
    "locations.json": lambda: RENDERER.locations(
        [f"/compute/{COMPUTE_ID}", "https://other.example/compute/1"], CTX),
    "qi.json": lambda: RENDERER.categories(query_interface(), CTX),
    "error.json": lambda: RENDERER.error(409, "action start not allowed in state active"),
}


def parse(document: object) -> list:
    return PARSER.entities(json.dumps(document).encode(), [])


def rendered_json(rendered: Rendered) -> object:
    return json.loads(rendered.body)


# --- rendering ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_json_rendering_matches_golden(name: str) -> None:
    assert_golden(name, GOLDEN[name]().body)


@pytest.mark.parametrize("media_type", ["application/occi+json", "application/json"])
def test_renderer_echoes_the_negotiated_type(media_type: str) -> None:
    renderer = JsonRenderer(media_type)
    assert renderer.media_type == media_type
    assert renderer.entity(compute(), CTX).content_type == media_type
    assert renderer.ok() == Rendered(b"", media_type)


def test_resource_shape() -> None:
    document = rendered_json(RENDERER.entity(compute(), CTX))
    assert list(document) == ["kind", "mixins", "attributes", "actions", "id", "links",
                              "title", "summary"]
    assert document["id"] == f"urn:uuid:{COMPUTE_ID}"
    assert document["mixins"] == [DEBIAN.type_id, SMALL.type_id]
    assert document["attributes"]["occi.compute.memory"] == 4.0
    assert type(document["attributes"]["occi.compute.cores"]) is int
    assert "occi.core.id" not in document["attributes"]
    assert "occi.compute.state.message" not in document["attributes"]


def test_title_and_summary_are_left_out_when_none() -> None:
    document = rendered_json(RENDERER.entity(Resource(id="1", kind=infra.NETWORK), CTX))
    assert "title" not in document and "summary" not in document
    assert document["links"] == [] and document["id"] == "1"


def test_inline_links_are_full_link_objects() -> None:
    document = rendered_json(RENDERER.entity(compute(), CTX))
    link = document["links"][1]
    assert list(link) == ["kind", "mixins", "attributes", "actions", "id", "source", "target"]
    assert link["source"] == {"location": f"/compute/{COMPUTE_ID}",
                              "kind": f"{INFRA}compute"}
    assert link["target"]["kind"] == f"{INFRA}network"
    assert link["mixins"] == [infra.IPNETWORKINTERFACE.type_id]


def test_link_without_known_kinds_leaves_kind_out_of_source_and_target() -> None:
    link = networkinterface()
    link.source_kind = link.target_kind = None
    document = rendered_json(RENDERER.entity(link, CTX))
    assert document["source"] == {"location": link.source}
    assert document["target"] == {"location": link.target}


def test_collections_keep_resources_and_links_apart() -> None:
    assert rendered_json(RENDERER.collection([], CTX)) == {"resources": []}
    only_links = rendered_json(RENDERER.collection([storagelink()], CTX))
    assert list(only_links) == ["links"]
    mixed = rendered_json(RENDERER.collection([storage(), storagelink()], CTX))
    assert [len(mixed["resources"]), len(mixed["links"])] == [1, 1]


def test_locations_are_a_bare_array_of_absolute_urls() -> None:
    assert rendered_json(RENDERER.locations(["/compute/1"], CTX)) == [
        "https://c.example/compute/1"]


def test_query_interface_shapes() -> None:
    document = rendered_json(RENDERER.categories(query_interface(), CTX))
    assert list(document) == ["kinds", "mixins", "actions"]
    compute_kind = document["kinds"][0]
    assert list(compute_kind) == ["term", "scheme", "title", "attributes", "actions", "parent",
                                  "location"]
    assert compute_kind["parent"] == "http://schemas.ogf.org/occi/core#resource"
    assert "occi.core.id" in compute_kind["attributes"]
    template = next(m for m in document["mixins"] if m["term"] == "small")
    assert template["depends"] == [f"{INFRA}resource_tpl"]
    assert template["applies"] == [f"{INFRA}compute"]
    assert template["attributes"]["occi.compute.cores"]["default"] == 2
    stop = next(a for a in document["actions"] if a["term"] == "stop")
    assert list(stop) == ["term", "scheme", "title", "attributes"]


@pytest.mark.parametrize(("name", "expected"), [
    ("occi.compute.cores", {"mutable": True, "required": False, "type": "number",
                            "pattern": {"type": "integer", "minimum": 1, "maximum": 1024},
                            "description": "Number of cores"}),
    ("occi.compute.state", {"mutable": False, "required": True, "type": "string",
                            "pattern": {"enum": ["active", "inactive", "suspended", "error"]},
                            "default": "inactive", "description": "Current state"}),
    ("occi.compute.memory", {"mutable": True, "required": False, "type": "number",
                             "pattern": {"type": "number", "minimum": 0.0625,
                                         "maximum": 4096.0},
                             "description": "Memory in GiB"}),
])
def test_attribute_definitions(name: str, expected: dict[str, object]) -> None:
    definition = infra.COMPUTE.attribute(name)
    assert definition is not None
    assert attribute_definition_object(definition) == expected


def test_string_pattern_becomes_a_json_schema_object() -> None:
    definition = infra.COMPUTE.attribute("occi.compute.hostname")
    assert definition is not None
    pattern = attribute_definition_object(definition)["pattern"]
    assert pattern == {"type": "string", "pattern": definition.pattern}


def test_error_document() -> None:
    assert rendered_json(RENDERER.error(404, "no compute 42")) == {
        "code": 404, "message": "no compute 42"}


# --- round trips -------------------------------------------------------------------------


def test_resource_round_trips_through_json() -> None:
    sample = compute()
    (request,) = PARSER.entities(RENDERER.entity(sample, CTX).body, [])
    assert request.kind == infra.COMPUTE.type_id
    assert request.mixins == [DEBIAN.type_id, SMALL.type_id]
    assert request.attributes == {k: v for k, v in sample.attributes.items() if v is not None}
    assert request.action_links == [infra.START.type_id]
    storage_link, interface = request.links
    assert storage_link.target == sample.links[0].target
    assert storage_link.target_kind == infra.STORAGE.type_id
    assert storage_link.categories == [infra.STORAGELINK.type_id]
    assert storage_link.attributes["occi.storagelink.deviceid"] == "vdb"
    assert interface.categories == [infra.NETWORKINTERFACE.type_id,
                                    infra.IPNETWORKINTERFACE.type_id]


def test_collection_round_trips_through_json() -> None:
    body = RENDERER.collection([compute(), storage(), storagelink()], CTX).body
    requests = PARSER.entities(body, [])
    assert [r.kind for r in requests] == [infra.COMPUTE.type_id, infra.STORAGE.type_id,
                                          infra.STORAGELINK.type_id]
    assert requests[1].attributes["occi.storage.size"] == 0.125
    assert requests[2].attributes["occi.core.source"] == f"/compute/{COMPUTE_ID}"


def test_query_interface_mixins_round_trip_as_category_refs() -> None:
    refs = PARSER.categories(RENDERER.categories([SMALL, DEBIAN], CTX).body, [])
    assert [(r.type_id, r.cls, r.location) for r in refs] == [
        (SMALL.type_id, "mixin", SMALL.location), (DEBIAN.type_id, "mixin", DEBIAN.location)]
    assert refs[0].rel == [f"{INFRA}resource_tpl"]
    assert refs[0].attributes == ["occi.compute.cores", "occi.compute.memory",
                                  "occi.compute.share"]


# --- parsing -----------------------------------------------------------------------------


def test_notes_sample_resource_parses() -> None:
    (request,) = parse({
        "kind": f"{INFRA}compute", "mixins": ["https://c.example/occi/os_tpl#debian12"],
        "id": "urn:uuid:5f1c", "title": "vm1",
        "attributes": {"occi.compute.cores": 2, "occi.compute.memory": 4.0,
                       "occi.compute.state": "active"},
        "actions": [f"{INFRA[:-1]}/compute/action#stop"],
        "links": [{"kind": f"{INFRA}storagelink", "id": "urn:uuid:77d2",
                   "source": {"location": "/compute/5f1c"},
                   "target": {"location": "/storage/9a0e", "kind": f"{INFRA}storage"},
                   "attributes": {"occi.storagelink.deviceid": "vdb"}}]})
    assert request.attributes["occi.core.id"] == "urn:uuid:5f1c"
    assert request.attributes["occi.core.title"] == "vm1"
    (link,) = request.links
    assert link.target == "/storage/9a0e"
    assert link.rel == [f"{INFRA}storage"]
    assert link.self_location == "urn:uuid:77d2"
    assert link.attributes == {"occi.storagelink.deviceid": "vdb",
                               "occi.core.id": "urn:uuid:77d2"}


def test_link_location_wins_over_id_as_self() -> None:
    (request,) = parse({"kind": f"{INFRA}compute", "links": [
        {"kind": f"{INFRA}storagelink", "id": "x", "location": "/storagelink/x",
         "target": {"location": "/storage/1"}}]})
    assert request.links[0].self_location == "/storagelink/x"


def test_standalone_link_gets_source_and_target_attributes() -> None:
    (request,) = parse({"kind": f"{INFRA}storagelink",
                        "source": {"location": "/compute/1", "kind": f"{INFRA}compute"},
                        "target": {"location": "/storage/2"},
                        "attributes": {"occi.storagelink.deviceid": "vdc"}})
    assert request.attributes == {"occi.storagelink.deviceid": "vdc",
                                  "occi.core.source": "/compute/1",
                                  "occi.core.source.kind": f"{INFRA}compute",
                                  "occi.core.target": "/storage/2"}


def test_links_collection_parses() -> None:
    requests = parse({"links": [{"kind": f"{INFRA}storagelink",
                                 "source": {"location": "/compute/1"},
                                 "target": {"location": "/storage/2"}}]})
    assert [r.attributes["occi.core.target"] for r in requests] == ["/storage/2"]


def test_numbers_keep_their_json_type_and_exponents_are_fine() -> None:
    (request,) = parse({"kind": f"{INFRA}compute", "attributes": {
        "occi.compute.cores": 2, "occi.compute.memory": 0.125, "occi.compute.speed": 1e-5}})
    attributes = request.attributes
    assert type(attributes["occi.compute.cores"]) is int
    assert attributes["occi.compute.memory"] == 0.125
    assert attributes["occi.compute.speed"] == 1e-5
    (request,) = PARSER.entities(
        b'{"kind": "k#c", "attributes": {"occi.compute.memory": 1E-5}}', [])
    assert request.attributes["occi.compute.memory"] == 1e-5


BAD_DOCUMENTS = {
    "invalid JSON": b'{"kind": ',
    "not UTF-8": b'{"kind": "\xff"}',
    "not an object": b'["kind"]',
    "resource without kind": b'{"attributes": {"occi.core.title": "x"}}',
    "kind not a string": b'{"kind": 3}',
    "attributes not an object": b'{"kind": "k#c", "attributes": []}',
    "NaN": b'{"kind": "k#c", "attributes": {"a": NaN}}',
    "resource in collection without kind": b'{"resources": [{"mixins": []}]}',
    "link without target": b'{"kind": "k#c", "links": [{"kind": "k#l"}]}',
    "link target without location": b'{"kind": "k#c", "links": [{"kind": "k#l", "target": {}}]}',
    "resources not an array": b'{"resources": {"kind": "k#c"}}',
    "mixins not strings": b'{"kind": "k#c", "mixins": [1]}',
}


@pytest.mark.parametrize("case", sorted(BAD_DOCUMENTS))
def test_malformed_json_is_a_parse_error(case: str) -> None:
    with pytest.raises(ParseError):
        PARSER.entities(BAD_DOCUMENTS[case], [])


def test_action_invocation() -> None:
    action = PARSER.action(
        b'{"action": "http://schemas.ogf.org/occi/infrastructure/compute/action#stop",'
        b' "attributes": {"method": "graceful"}}', [])
    assert action.action.endswith("action#stop")
    assert action.attributes == {"method": "graceful"}
    assert PARSER.action(b'{"action": "a#b"}', []).attributes == {}


@pytest.mark.parametrize("body", [b"{}", b'{"action": ""}', b'{"action": "a#b", "attributes": 1}',
                                  b'"a#b"'])
def test_bad_action_invocation(body: bytes) -> None:
    with pytest.raises(ParseError):
        PARSER.action(body, [])


def test_single_mixin_object_is_a_category() -> None:
    (ref,) = PARSER.categories(
        b'{"term": "my_stuff", "scheme": "http://example.com/occi/my_stuff#",'
        b' "location": "/my_stuff/", "depends": ["http://example.com/occi#tag"]}', [])
    assert (ref.term, ref.cls, ref.location, ref.rel) == (
        "my_stuff", "mixin", "/my_stuff/", ["http://example.com/occi#tag"])


@pytest.mark.parametrize("body", [b'{"mixins": [{"term": "x"}]}', b'{"scheme": "a#"}',
                                  b'{"mixins": {}}'])
def test_bad_categories(body: bytes) -> None:
    with pytest.raises(ParseError):
        PARSER.categories(body, [])


@pytest.mark.parametrize("body", [b'["https://c.example/compute/1", "/compute/2"]',
                                  b'{"locations": ["https://c.example/compute/1", "/compute/2"]}'])
def test_locations(body: bytes) -> None:
    assert PARSER.locations(body, []) == ["https://c.example/compute/1", "/compute/2"]


@pytest.mark.parametrize("body", [b'["compute/1"]', b'[1]', b'{"x": []}', b'"/compute/1"'])
def test_bad_locations(body: bytes) -> None:
    with pytest.raises(ParseError):
        PARSER.locations(body, [])


def test_filters_come_from_header_fields() -> None:
    categories, attributes = PARSER.filters(b"", [
        ("Category", f'compute; scheme="{INFRA}"; class="kind"'),
        ("X-OCCI-Attribute", 'occi.compute.state="active"')])
    assert [c.type_id for c in categories] == [f"{INFRA}compute"]
    assert attributes == {"occi.compute.state": "active"}
