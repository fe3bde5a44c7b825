"""Content negotiation, the renderer/parser map and the OCCI version rule (notes §2.2), plus a
contract suite run against every renderer and parser."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidRequest, NotAcceptable, ParseError
from occi.rendering import PARSE_TYPES, RENDER_TYPES, URI_LIST, Rendered
from occi.rendering.json import JsonParser
from occi.rendering.negotiation import (
    negotiate,
    occi_version_ok,
    parse_accept,
    parser_for,
    renderer_for,
)
from occi.rendering.text import TextOcciParser, TextPlainParser, UriListParser
from tests.rendering_samples import CTX, compute, query_interface, storage


@pytest.mark.parametrize(("accept", "expected"), [
    (None, "text/plain"),
    ("", "text/plain"),
    ("*/*", "text/plain"),
    ("text/*", "text/plain"),
    ("application/*", "application/occi+json"),
    ("text/plain", "text/plain"),
    ("text/occi+plain", "text/occi+plain"),
    ("text/occi", "text/occi"),
    ("text/uri-list", "text/uri-list"),
    ("application/occi+json", "application/occi+json"),
    ("application/json", "application/json"),
    ("TEXT/OCCI", "text/occi"),
    ("text/plain; charset=utf-8", "text/plain"),
    ("text/plain,text/occi;q=0.2", "text/plain"),
    ("text/plain;q=0.2, text/occi", "text/occi"),
    ("text/occi;q=0.5, application/occi+json", "application/occi+json"),
    ("*/*;q=0.1, text/occi", "text/occi"),
    ("application/json, application/occi+json", "application/json"),
    ("application/occi+json, application/json", "application/occi+json"),
    ("text/html, */*;q=0.8", "text/plain"),
    ("image/png, text/uri-list;q=0.3", "text/uri-list"),
    ("*/*, text/plain;q=0", "text/occi+plain"),
    ("text/plain;q=oops, text/occi", "text/occi"),
])
def test_negotiate(accept: str | None, expected: str) -> None:
    assert negotiate(accept) == expected


@pytest.mark.parametrize("accept", ["image/png", "text/plain;q=0", "application/xml, text/html",
                                    "*/*;q=0", "garbage"])
def test_nothing_acceptable_names_the_supported_types(accept: str) -> None:
    with pytest.raises(NotAcceptable, match="supported: text/plain, text/occi\\+plain"):
        negotiate(accept)


def test_accept_ranges_keep_q_and_position() -> None:
    ranges = parse_accept("text/occi;q=0.2, */*")
    assert [(r.type, r.subtype, r.q, r.position) for r in ranges] == [
        ("text", "occi", 0.2, 0), ("*", "*", 1.0, 1)]


@pytest.mark.parametrize("media_type", RENDER_TYPES)
def test_renderer_for_echoes_the_media_type(media_type: str) -> None:
    renderer = renderer_for(media_type)
    assert renderer.media_type == media_type
    assert renderer.ok().content_type == media_type
    assert renderer.error(400, "bad").content_type == media_type


def test_renderer_for_ignores_parameters_and_case() -> None:
    assert renderer_for("Text/Plain; charset=utf-8").media_type == "text/plain"


def test_renderer_for_unknown_type() -> None:
    with pytest.raises(NotAcceptable, match="application/xml"):
        renderer_for("application/xml")


@pytest.mark.parametrize(("content_type", "parser_type"), [
    (None, TextOcciParser),
    ("", TextOcciParser),
    ("text/occi", TextOcciParser),
    ("text/plain; charset=utf-8", TextPlainParser),
    ("text/occi+plain", TextPlainParser),
    ("TEXT/PLAIN", TextPlainParser),
    ("text/uri-list", UriListParser),
    ("application/occi+json", JsonParser),
    ("Application/JSON;charset=UTF-8", JsonParser),
])
def test_parser_for(content_type: str | None, parser_type: type) -> None:
    assert isinstance(parser_for(content_type), parser_type)


@pytest.mark.parametrize("content_type", ["application/xml", "multipart/form-data; boundary=x"])
def test_parser_for_unsupported_type(content_type: str) -> None:
    with pytest.raises(NotAcceptable, match="supported"):
        parser_for(content_type)


@pytest.mark.parametrize(("user_agent", "ok"), [
    (None, True),
    ("", True),
    ("curl/8.5.0", True),
    ("x OCCI/1.3", False),
    ("OCCI/2.0", False),
    ("OCCI/1.10", False),
    ("OCCI/1.1", True),
    ("OCCI/1.2", True),
    ("pOCCI OCCI/1.0", True),
    ("rOCCI-cli/4.3.7 rOCCI-core/4.3.7 rOCCI-api/4.3.7 OCCI/1.1 Ruby/2.3", True),
    ("x OCCI/1.3 OCCI/1.1", True),
    ("rOCCI/4.3", True),
    ("rOCCI/9.9 OCCI/1.3", False),
    ("occi/1.3", False),
])
def test_occi_version_rule(user_agent: str | None, ok: bool) -> None:
    assert occi_version_ok(user_agent) is ok


# --- contract suite: every renderer, every parser ----------------------------------------


@pytest.mark.parametrize("media_type", RENDER_TYPES)
def test_every_renderer_renders_collections_and_locations(media_type: str) -> None:
    renderer = renderer_for(media_type)
    for rendered in (renderer.collection([compute(), storage()], CTX),
                     renderer.collection([], CTX),
                     renderer.locations(["/compute/1"], CTX)):
        assert isinstance(rendered, Rendered)
        assert rendered.content_type == media_type
        assert isinstance(rendered.body, bytes)


@pytest.mark.parametrize("media_type", RENDER_TYPES)
def test_every_renderer_renders_entities_and_categories_or_refuses_with_400(
        media_type: str) -> None:
    renderer = renderer_for(media_type)
    if media_type == URI_LIST:
        with pytest.raises(InvalidRequest):
            renderer.entity(compute(), CTX)
        return
    assert compute().id in renderer.entity(compute(), CTX).body.decode() + "".join(
        value for _, value in renderer.entity(compute(), CTX).headers)
    rendered = renderer.categories(query_interface(), CTX)
    assert "compute" in rendered.body.decode() + "".join(v for _, v in rendered.headers)


@pytest.mark.parametrize("media_type", RENDER_TYPES)
def test_every_renderer_puts_the_error_message_in_its_body(media_type: str) -> None:
    assert "no compute 42" in renderer_for(media_type).error(404, "no compute 42").body.decode()


@pytest.mark.parametrize("content_type", PARSE_TYPES)
def test_every_parser_reads_locations(content_type: str) -> None:
    bodies = {"text/uri-list": b"https://c.example/compute/1\n",
              "application/occi+json": b'["https://c.example/compute/1"]',
              "application/json": b'["https://c.example/compute/1"]'}
    headers = [("X-OCCI-Location", "https://c.example/compute/1")]
    body = bodies.get(content_type, b"")
    assert parser_for(content_type).locations(body, headers) == ["https://c.example/compute/1"]


@pytest.mark.parametrize("content_type", PARSE_TYPES)
def test_every_parser_rejects_garbage_with_a_parse_error(content_type: str) -> None:
    garbage = b"{not: occi, \"unterminated\n"
    headers = [("Category", 'compute; scheme="unterminated')]
    with pytest.raises(ParseError):
        parser_for(content_type).entities(garbage, headers)
