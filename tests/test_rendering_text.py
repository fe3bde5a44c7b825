"""text/plain, text/occi+plain, text/occi and text/uri-list: golden renderings, the emit rules
of notes §3.2, the parser quirks of §10 and the test vectors of §11."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from gateway.errors import InvalidRequest, ParseError
from occi import infrastructure as infra
from occi.core import AttributeDefinition, Entity, Kind, Mixin, Resource
from occi.rendering import Rendered
from occi.rendering.text import (
    TextOcciParser,
    TextOcciRenderer,
    TextPlainParser,
    TextPlainRenderer,
    UriListParser,
    UriListRenderer,
)
from occi.rendering.text_parse import parse_category
from occi.rendering.text_values import format_float, format_value, parse_value
from tests.rendering_samples import (
    COMPUTE_ID,
    CTX,
    DEBIAN,
    SMALL,
    assert_golden,
    compute,
    headers_text,
    networkinterface,
    query_interface,
    storage,
    storagelink,
)

PLAIN = TextPlainRenderer()
OCCI = TextOcciRenderer()
URIS = UriListRenderer()
INFRA = "http://schemas.ogf.org/occi/infrastructure#"
COMPUTE_KIND = f'compute; scheme="{INFRA}"; class="kind"'


def one_entity(text: str):
    (request,) = TextPlainParser().entities(text.encode(), [])
    return request


def from_headers(*headers: tuple[str, str]):
    (request,) = TextOcciParser().entities(b"", list(headers))
    return request


# --- golden renderings -------------------------------------------------------------------

GOLDEN_PLAIN: dict[str, Callable[[], Rendered]] = {
    "compute_text_plain.txt": lambda: PLAIN.entity(compute(), CTX),
    "storage_text_plain.txt": lambda: PLAIN.entity(storage(), CTX),
    "storagelink_text_plain.txt": lambda: PLAIN.entity(storagelink(), CTX),
    "networkinterface_text_plain.txt": lambda: PLAIN.entity(networkinterface(), CTX),
    "collection_text_plain.txt": lambda: PLAIN.collection([compute(), storage()], CTX),
    "locations_text_plain.txt": lambda: PLAIN.locations(
        [f"/compute/{COMPUTE_ID}", "https://other.example/compute/1"], CTX),
    "qi_text_plain.txt": lambda: PLAIN.categories(query_interface(), CTX),
    "qi_compute_kind.txt": lambda: PLAIN.categories([infra.COMPUTE], CTX),
    "qi_os_template.txt": lambda: PLAIN.categories([DEBIAN], CTX),
    "qi_stop_action.txt": lambda: PLAIN.categories([infra.STOP], CTX),
    "error_text_plain.txt": lambda: PLAIN.error(409, "action start not allowed\nin state active"),
    "collection_uri_list.txt": lambda: URIS.collection([compute(), storage()], CTX),
    "locations_uri_list.txt": lambda: URIS.locations([f"/compute/{COMPUTE_ID}"], CTX),
    "error_uri_list.txt": lambda: URIS.error(400, "text/uri-list renders only collections"),
}
GOLDEN_OCCI: dict[str, Callable[[], Rendered]] = {
    "compute_text_occi.headers": lambda: OCCI.entity(compute(), CTX),
    "storagelink_text_occi.headers": lambda: OCCI.entity(storagelink(), CTX),
    "collection_text_occi.headers": lambda: OCCI.collection([compute(), storage()], CTX),
    "qi_text_occi.headers": lambda: OCCI.categories(query_interface(), CTX),
    "ok_text_occi.headers": OCCI.ok,
    "error_text_occi.headers": lambda: OCCI.error(404, "no compute 42"),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_PLAIN))
def test_body_rendering_matches_golden(name: str) -> None:
    assert_golden(name, GOLDEN_PLAIN[name]().body)


@pytest.mark.parametrize("name", sorted(GOLDEN_OCCI))
def test_header_rendering_matches_golden(name: str) -> None:
    assert_golden(name, headers_text(GOLDEN_OCCI[name]()))


def test_text_occi_plain_alias_renders_like_text_plain_and_echoes_its_type() -> None:
    alias = TextPlainRenderer("text/occi+plain").entity(compute(), CTX)
    assert alias.content_type == "text/occi+plain"
    assert alias.body == PLAIN.entity(compute(), CTX).body
    assert PLAIN.entity(compute(), CTX).content_type == "text/plain"


def test_content_types_echo_the_media_type_without_parameters() -> None:
    assert OCCI.ok().content_type == "text/occi"
    assert URIS.collection([], CTX).content_type == "text/uri-list"


# --- emit rules (§3.2) -------------------------------------------------------------------


def _category_lines(body: bytes) -> list[str]:
    return [line for line in body.decode().split("\r\n") if line.startswith("Category:")]


def test_lines_end_in_crlf_and_no_bare_lf() -> None:
    body = PLAIN.entity(compute(), CTX).body.decode()
    assert body.endswith("\r\n")
    assert body.count("\n") == body.count("\r\n")


@pytest.mark.parametrize("category", query_interface(), ids=lambda c: c.term)
def test_category_parameters_in_grammar_order_with_spaced_separator(category) -> None:
    (line,) = _category_lines(PLAIN.categories([category], CTX).body)
    names = re.findall(r'; ([a-z]+)=', line)
    order = ["scheme", "class", "title", "rel", "location", "attributes", "actions"]
    assert names == sorted(names, key=order.index)
    assert not line.rstrip().endswith(";")
    assert ";" not in line.replace("; ", "")


def test_category_location_is_a_path_and_entity_locations_are_absolute() -> None:
    (kind_line,) = _category_lines(PLAIN.categories([infra.COMPUTE], CTX).body)
    assert 'location="/compute/"' in kind_line
    locations = PLAIN.collection([compute()], CTX).body.decode()
    assert locations == f"X-OCCI-Location: https://c.example/compute/{COMPUTE_ID}\r\n"


def test_kind_rel_is_parent_and_mixin_rel_is_first_depends_only() -> None:
    two_parents = Mixin("https://c.example/occi/x#", "both", depends=(infra.OS_TPL, SMALL))
    (line,) = _category_lines(PLAIN.categories([two_parents], CTX).body)
    assert f'rel="{INFRA}os_tpl"' in line
    assert SMALL.type_id not in line
    (kind_line,) = _category_lines(PLAIN.categories([infra.STORAGELINK], CTX).body)
    assert 'rel="http://schemas.ogf.org/occi/core#link"' in kind_line


def test_kind_attribute_properties_list_every_inherited_attribute() -> None:
    kind = Kind("https://c.example/k#", "thing", parent=infra.RESOURCE, location="/thing/",
                attributes=(AttributeDefinition("x.immutable", mutable=False),
                            AttributeDefinition("x.required", required=True),
                            AttributeDefinition("x.plain")))
    (line,) = _category_lines(PLAIN.categories([kind], CTX).body)
    assert ('attributes="occi.core.id{immutable required} occi.core.title occi.core.summary '
            'x.immutable{immutable} x.required{required} x.plain"') in line


@pytest.mark.parametrize(("value", "text"), [
    (1e-05, "0.00001"), (2.0, "2.0"), (0.125, "0.125"), (4096.0, "4096.0"),
    (1e20, "100000000000000000000.0"), (1.5e-7, "0.00000015"), (-3.25, "-3.25"),
])
def test_floats_have_a_dot_and_never_an_exponent(value: float, text: str) -> None:
    assert format_float(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (True, "true"), (False, "false"), (2, "2"), (0, "0"), (4.0, "4.0"),
    ('say "hi" \\ bye', '"say \\"hi\\" \\\\ bye"'), ("two\nlines", '"two\\nlines"'),
    (["a", 1], '"[\\"a\\",1]"'),
])
def test_attribute_values_in_text_form(value: object, text: str) -> None:
    assert format_value(value) == text


def test_attribute_names_are_rendered_lower_case() -> None:
    entity = storage()
    entity.attributes["OCCI.Storage.Size"] = entity.attributes.pop("occi.storage.size")
    body = PLAIN.entity(entity, CTX).body.decode()
    assert "X-OCCI-Attribute: occi.storage.size=0.125\r\n" in body
    assert "OCCI.Storage" not in body


def test_none_attributes_are_left_out_and_core_id_comes_first() -> None:
    lines = PLAIN.entity(compute(), CTX).body.decode().split("\r\n")
    attributes = [line for line in lines if line.startswith("X-OCCI-Attribute:")]
    assert attributes[0].startswith("X-OCCI-Attribute: occi.core.id=")
    assert not any("state.message" in line for line in attributes)


def test_action_links_point_at_the_absolute_entity_location() -> None:
    body = PLAIN.entity(compute(), CTX).body.decode()
    assert (f"Link: <https://c.example/compute/{COMPUTE_ID}?action=start>; "
            f'rel="{INFRA[:-1]}/compute/action#start"\r\n') in body


def test_text_occi_sends_one_header_per_field_name_and_body_ok() -> None:
    rendered = OCCI.entity(compute(), CTX)
    names = [name for name, _ in rendered.headers]
    assert names == ["Category", "Link", "X-OCCI-Attribute"]
    assert rendered.body == b"OK"


def test_text_occi_error_carries_x_occi_error_on_one_line() -> None:
    rendered = OCCI.error(400, "bad\r\nrequest")
    assert ("X-OCCI-Error", "bad request") in rendered.headers
    assert b"\n" not in rendered.body


def test_uri_list_renders_only_listings() -> None:
    with pytest.raises(InvalidRequest, match="only collections"):
        URIS.entity(compute(), CTX)
    with pytest.raises(InvalidRequest, match="only collections"):
        URIS.categories(query_interface(), CTX)


# --- round trips -------------------------------------------------------------------------


def _expected_attributes(entity: Entity) -> dict[str, object]:
    return {k: v for k, v in entity.attributes.items() if v is not None}


@pytest.mark.parametrize("carrier", ["body", "headers"])
def test_resource_round_trips_through_text(carrier: str) -> None:
    sample = compute()
    if carrier == "body":
        request = one_entity(PLAIN.entity(sample, CTX).body.decode())
    else:
        request = from_headers(*OCCI.entity(sample, CTX).headers)
    assert request.kind == infra.COMPUTE.type_id
    assert request.mixins == [DEBIAN.type_id, SMALL.type_id]
    assert request.attributes == _expected_attributes(sample)
    assert request.action_links == [infra.START.type_id]
    storage_link, interface = request.links
    assert storage_link.target == sample.links[0].target
    assert storage_link.rel == [infra.STORAGE.type_id]
    assert storage_link.self_location == sample.links[0].location
    assert storage_link.attributes["occi.storagelink.mountpoint"] == "/mnt/data"
    assert interface.categories == [infra.NETWORKINTERFACE.type_id,
                                    infra.IPNETWORKINTERFACE.type_id]


def test_link_instance_round_trips_with_source_and_target() -> None:
    request = one_entity(PLAIN.entity(storagelink(), CTX).body.decode())
    assert request.kind == infra.STORAGELINK.type_id
    assert request.attributes["occi.core.source"] == f"/compute/{COMPUTE_ID}"
    assert request.attributes["occi.core.target.kind"] == infra.STORAGE.type_id
    assert request.attributes["occi.storagelink.deviceid"] == "vdb"


def test_memory_round_trips_exactly_and_cores_stay_int() -> None:
    entity = storage()
    entity.attributes.update({"occi.compute.memory": 0.125, "occi.compute.cores": 2})
    attributes = one_entity(PLAIN.entity(entity, CTX).body.decode()).attributes
    assert attributes["occi.compute.memory"] == 0.125
    assert type(attributes["occi.compute.cores"]) is int
    assert attributes["occi.compute.cores"] == 2


def test_tiny_float_round_trips_without_exponent() -> None:
    entity = storage()
    entity.attributes["occi.storage.size"] = 1e-05
    attributes = one_entity(PLAIN.entity(entity, CTX).body.decode()).attributes
    assert attributes["occi.storage.size"] == 1e-05


def test_strings_with_quotes_backslashes_and_line_breaks_round_trip() -> None:
    entity = storage()
    entity.attributes["occi.core.title"] = 'a "b", c\\d\nnext line; e'
    attributes = one_entity(PLAIN.entity(entity, CTX).body.decode()).attributes
    assert attributes["occi.core.title"] == 'a "b", c\\d\nnext line; e'


@pytest.mark.parametrize("category", query_interface(), ids=lambda c: c.term)
def test_query_interface_categories_round_trip(category) -> None:
    (ref,) = TextPlainParser().categories(PLAIN.categories([category], CTX).body, [])
    assert (ref.scheme, ref.term, ref.cls) == (category.scheme, category.term,
                                                category.category_class)
    assert ref.location == getattr(category, "location", None)
    assert ref.title == (category.title or None)


def test_kind_attribute_specs_parse_verbatim() -> None:
    (ref,) = TextPlainParser().categories(PLAIN.categories([infra.COMPUTE], CTX).body, [])
    assert ref.attributes[0] == "occi.core.id{immutable required}"
    assert "occi.compute.cores" in ref.attributes
    assert ref.rel == ["http://schemas.ogf.org/occi/core#resource"]
    assert f"{INFRA[:-1]}/compute/action#stop" in ref.actions


# --- samples of §3.3 ---------------------------------------------------------------------


def test_create_sample_parses() -> None:
    request = one_entity(
        f"Category: {COMPUTE_KIND}\r\n"
        'Category: debian12; scheme="https://c.example/occi/os_tpl#"; class="mixin"\r\n'
        f'Link: </network/pub>; rel="{INFRA}network"; category="{INFRA}networkinterface"\r\n'
        'X-OCCI-Attribute: occi.core.title="vm1"\r\n')
    assert request.kind == f"{INFRA}compute"
    assert request.mixins == ["https://c.example/occi/os_tpl#debian12"]
    (link,) = request.links
    assert (link.target, link.rel, link.categories) == (
        "/network/pub", [f"{INFRA}network"], [f"{INFRA}networkinterface"])
    assert link.self_location is None
    assert request.attributes == {"occi.core.title": "vm1"}


def test_inline_storage_link_sample_parses() -> None:
    request = one_entity(
        f'Category: {COMPUTE_KIND}\nLink: </storage/9a0e>; rel="{INFRA}storage"; '
        f'self="/storagelink/77d2"; category="{INFRA}storagelink"; '
        'occi.storagelink.deviceid="vdb"\n')
    (link,) = request.links
    assert link.self_location == "/storagelink/77d2"
    assert link.attributes == {"occi.storagelink.deviceid": "vdb"}


def test_action_sample_parses() -> None:
    body = (f'Category: stop; scheme="{INFRA[:-1]}/compute/action#"; class="action"\r\n'
            'X-OCCI-Attribute: method="graceful"\r\n')
    action = TextPlainParser().action(body.encode(), [])
    assert action.action == f"{INFRA[:-1]}/compute/action#stop"
    assert action.attributes == {"method": "graceful"}


def test_action_term_is_kept_for_the_query_term_check() -> None:
    """``?action=start`` with a ``stop`` Category is a 400 decided by the caller, which
    compares the query term with the parsed action's term."""
    action = TextOcciParser().action(b"", [
        ("Category", f'stop; scheme="{INFRA[:-1]}/compute/action#"; class=action')])
    assert action.action.rsplit("#", 1)[1] == "stop"


def test_user_mixin_and_association_samples_parse() -> None:
    (mixin,) = TextPlainParser().categories(
        b'Category: my_stuff; scheme="http://example.com/occi/my_stuff#"; class="mixin"; '
        b'location="/my_stuff/"', [])
    assert (mixin.cls, mixin.location) == ("mixin", "/my_stuff/")
    locations = TextPlainParser().locations(
        b"X-OCCI-Location: https://c.example/compute/5f1c\r\n", [])
    assert locations == ["https://c.example/compute/5f1c"]


# --- vectors of §11 ----------------------------------------------------------------------


def test_quote_escaping_vector() -> None:
    request = from_headers(
        ("Category", COMPUTE_KIND),
        ("X-OCCI-Attribute", 'occi.compute.memory=3.6, occi.core.title="How\'s your quotes '
                             'escaping? \\", occi.compute.memory=1.0"'))
    assert request.attributes == {
        "occi.compute.memory": 3.6,
        "occi.core.title": 'How\'s your quotes escaping? ", occi.compute.memory=1.0',
    }


@pytest.mark.parametrize("name", ["Category", "category", "CATEGORY", "cATEGORY",
                                  "X-OCCI-Category", "x_occi_category"])
def test_category_field_name_in_any_capitalisation_or_alias(name: str) -> None:
    assert one_entity(f"{name}: {COMPUTE_KIND}\n").kind == f"{INFRA}compute"
    assert from_headers((name, COMPUTE_KIND)).kind == f"{INFRA}compute"


@pytest.mark.parametrize("name", ["X-OCCI-Location", "x-occi-location", "LOCATION"])
def test_location_field_name_in_any_capitalisation(name: str) -> None:
    joined = "https://c.example/compute/1, /compute/2"
    assert TextOcciParser().locations(b"", [(name, joined)]) == [
        "https://c.example/compute/1", "/compute/2"]
    assert TextPlainParser().locations(f"{name}: {joined}\n".encode(), []) == [
        "https://c.example/compute/1", "/compute/2"]


def test_summary_with_comma_inside_comma_joined_header() -> None:
    request = from_headers((
        "X-OCCI-Attribute",
        'occi.core.title="vm1", occi.core.summary="Thu, 20 Aug 2015 13:48:50 +0200.", '
        "occi.compute.cores=2"))
    assert request.attributes == {"occi.core.title": "vm1",
                                  "occi.core.summary": "Thu, 20 Aug 2015 13:48:50 +0200.",
                                  "occi.compute.cores": 2}


BAD_BODIES = {
    "category without scheme": 'Category: compute; class="kind"\n',
    "category with empty scheme": 'Category: compute; scheme=""; class="kind"\n',
    "class myClass": f'Category: compute; scheme="{INFRA}"; class="myClass"\n',
    "field Nocategory": f"Nocategory: {COMPUTE_KIND}\n",
    "field Category2": f"Category2: {COMPUTE_KIND}\n",
    "line without colon": f"{COMPUTE_KIND}\n",
    "unterminated quote in category": f'Category: compute; scheme="{INFRA}; class="kind\n',
    "unterminated quote in link rel": (
        f"Category: {COMPUTE_KIND}\n"
        f'Link: </compute/1?action=stop>; rel="{INFRA[:-1]}/compute/action#stop\n'),
    "unterminated quote in attribute": 'X-OCCI-Attribute: occi.core.id="103\n',
    "attribute without value": "X-OCCI-Attribute: occi.core.title\n",
    "attribute with empty value": "X-OCCI-Attribute: occi.core.title=\n",
    "unknown attribute property": (
        'Category: tag; scheme="http://e.example/t#"; class="mixin"; attributes="a{asdasd}"\n'),
    "exponent float": "X-OCCI-Attribute: occi.compute.memory=1e-5\n",
    "bare word value": "X-OCCI-Attribute: occi.compute.state=active\n",
    "two kinds": (f"Category: {COMPUTE_KIND}\n"
                  f'Category: storage; scheme="{INFRA}"; class="kind"\n'),
    "link without angle brackets": f'Link: /storage/1; rel="{INFRA}storage"\n',
    "action category in entity": (
        f'Category: stop; scheme="{INFRA[:-1]}/compute/action#"; class="action"\n'),
    "invalid term": f'Category: com pute; scheme="{INFRA}"; class="kind"\n',
    "parameter without value": f'Category: compute; scheme="{INFRA}"; kind\n',
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_malformed_text_is_a_parse_error(case: str) -> None:
    with pytest.raises(ParseError):
        one_entity(BAD_BODIES[case])


def test_bad_value_message_names_the_attribute_and_why() -> None:
    with pytest.raises(ParseError, match=r"occi\.compute\.memory.*exponent"):
        one_entity("X-OCCI-Attribute: occi.compute.memory=1e-5\n")
    with pytest.raises(ParseError, match=r"occi\.core\.title: no value"):
        one_entity("X-OCCI-Attribute: occi.core.title\n")


@pytest.mark.parametrize("name", ["Nocategory", "Category2", "X-OCCI-Attributes"])
def test_misspelt_occi_header_is_a_parse_error(name: str) -> None:
    with pytest.raises(ParseError, match=name):
        from_headers((name, COMPUTE_KIND))


@pytest.mark.parametrize("location", [
    "compute/1", "not a uri", "http://c.example/a b", "//c.example/compute/1", "<>",
    "https://c.example/compute/{1}",
])
def test_invalid_locations_are_parse_errors(location: str) -> None:
    with pytest.raises(ParseError, match="invalid location"):
        TextPlainParser().locations(f"X-OCCI-Location: {location}\n".encode(), [])
    with pytest.raises(ParseError, match="invalid location"):
        UriListParser().locations(f"https://c.example/ok\n{location}\n".encode(), [])


def test_class_is_optional_and_left_for_the_caller() -> None:
    """A class-less Category of an unknown type-id is a 400 from the caller (registry)."""
    request = one_entity(f'Category: compute; scheme="{INFRA}"\n')
    assert request.kind is None
    assert request.mixins == [f"{INFRA}compute"]
    (ref,) = TextPlainParser().categories(f'Category: x; scheme="{INFRA}"'.encode(), [])
    assert ref.cls is None


# --- quirks of §10 -----------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    f'Category: compute; scheme="{INFRA}"; class=kind\n',
    f'Category: compute;scheme="{INFRA}";class="kind"\n',
    f'Category: compute; scheme="{INFRA}"; class="kind";\n',
    f'Category: compute; scheme="{INFRA}"; class="kind"; \r\n',
    f'\r\nCategory: compute; scheme="{INFRA}"; class="Kind"\r\n',
    f'Category:compute; scheme="{INFRA}"; class="kind"',
    f'Category: compute; scheme="{INFRA}"; class="kind"; x-unknown="ignored"\n',
])
def test_category_syntax_variants(text: str) -> None:
    assert one_entity(text).kind == f"{INFRA}compute"


def test_repeated_and_comma_joined_fields_mix() -> None:
    request = from_headers(
        ("Category", f'{COMPUTE_KIND}, debian12; scheme="https://c.example/occi/os_tpl#"; '
                     'class="mixin"'),
        ("X-OCCI-Category", 'small; scheme="https://c.example/occi/resource_tpl#"; class=mixin'),
        ("X-OCCI-Attribute", "occi.compute.cores=2, occi.compute.memory=4.0"),
        ("x-occi-attribute", 'occi.core.title="a, b; c"'),
        ("X-OCCI-Link", f'</network/1>; rel="{INFRA}network", </storage/2>; '
                        f'rel="{INFRA}storage"'))
    assert request.mixins == [DEBIAN.type_id, SMALL.type_id]
    assert request.attributes == {"occi.compute.cores": 2, "occi.compute.memory": 4.0,
                                  "occi.core.title": "a, b; c"}
    assert [link.target for link in request.links] == ["/network/1", "/storage/2"]


def test_unrelated_headers_are_ignored() -> None:
    request = from_headers(("Host", "c.example"), ("User-Agent", "rOCCI-cli OCCI/1.1"),
                           ("Accept", "text/plain"), ("Content-Location", "/x"),
                           ("Category", COMPUTE_KIND))
    assert request.kind == f"{INFRA}compute"
    assert request.attributes == {}


def test_text_plain_reads_header_fields_when_the_body_has_none() -> None:
    headers = [("Category", COMPUTE_KIND), ("X-OCCI-Attribute", "occi.compute.cores=4")]
    (request,) = TextPlainParser().entities(b"\r\n", headers)
    assert request.kind == f"{INFRA}compute"
    assert request.attributes == {"occi.compute.cores": 4}


def test_text_plain_body_wins_over_header_fields() -> None:
    (request,) = TextPlainParser().entities(
        b"X-OCCI-Attribute: occi.compute.cores=1\n",
        [("X-OCCI-Attribute", "occi.compute.cores=4")])
    assert request.attributes == {"occi.compute.cores": 1}


def test_text_occi_ignores_the_body() -> None:
    (request,) = TextOcciParser().entities(b"OK", [("Category", COMPUTE_KIND)])
    assert request.kind == f"{INFRA}compute"


def test_upper_case_and_digit_first_terms_are_accepted() -> None:
    refs = TextPlainParser().categories(
        b'Category: 42; scheme="http://schemas.openstack.org/template/resource#"; '
        b'class="mixin"\nCategory: M1.Nano; scheme="http://o.example/r#"; class="mixin"', [])
    assert [ref.term for ref in refs] == ["42", "M1.Nano"]


def test_action_links_in_a_request_are_not_links() -> None:
    request = one_entity(
        f"Category: {COMPUTE_KIND}\n"
        "Link: <https://c.example/compute/1?action=stop>; "
        f'rel="{INFRA[:-1]}/compute/action#stop"\n')
    assert request.links == []
    assert request.action_links == [f"{INFRA[:-1]}/compute/action#stop"]


@pytest.mark.parametrize("headers", [
    [],
    [("Category", f'stop; scheme="{INFRA[:-1]}/compute/action#"; class="action", '
                  f'start; scheme="{INFRA[:-1]}/compute/action#"; class="action"')],
    [("Category", COMPUTE_KIND)],
])
def test_action_needs_exactly_one_action_category(headers: list[tuple[str, str]]) -> None:
    with pytest.raises(ParseError):
        TextOcciParser().action(b"", headers)


def test_filters_read_categories_and_attributes() -> None:
    categories, attributes = TextOcciParser().filters(
        b"", [("Category", COMPUTE_KIND), ("X-OCCI-Attribute", 'occi.compute.state="active"')])
    assert [c.type_id for c in categories] == [f"{INFRA}compute"]
    assert attributes == {"occi.compute.state": "active"}


@pytest.mark.parametrize("method", ["entities", "action", "categories"])
def test_uri_list_carries_only_locations(method: str) -> None:
    with pytest.raises(ParseError, match="only locations"):
        getattr(UriListParser(), method)(b"https://c.example/compute/1\n", [])


def test_uri_list_parser_skips_comments_and_blank_lines() -> None:
    body = b"# members\r\nhttps://c.example/compute/1\r\n\r\n/compute/2\r\n"
    assert UriListParser().locations(body, []) == ["https://c.example/compute/1", "/compute/2"]


def test_body_that_is_not_utf8_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="UTF-8"):
        TextPlainParser().entities(b"Category: \xff\xfe", [])


@pytest.mark.parametrize(("text", "value"), [
    ('"x"', "x"), ("true", True), ("false", False), ("12", 12), ("-3", -3), ("0.5", 0.5),
    ('"10"', "10"), ('"a\\\\b"', "a\\b"),
])
def test_attribute_value_forms(text: str, value: object) -> None:
    parsed = parse_value("a", text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("text", ["1e-5", "1.0E3", ".5", "5.", "True", "active", '"open', ""])
def test_attribute_value_errors(text: str) -> None:
    with pytest.raises(ParseError, match="attribute a"):
        parse_value("a", text)


def test_parsed_category_exposes_type_id() -> None:
    assert parse_category(COMPUTE_KIND).type_id == f"{INFRA}compute"


def test_resource_without_links_renders_without_link_lines() -> None:
    body = PLAIN.entity(Resource(id="1", kind=infra.NETWORK), CTX).body.decode()
    assert "Link:" not in body
    assert body.startswith("Category: network;")
