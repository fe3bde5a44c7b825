"""The OCCI HTTP protocol of the whole gateway: query interface, user mixins, collections,
pagination, negotiation, versions, errors, bad input and who sees what."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import func, select

from gateway.store.models import EntityMixin, EntityRow, Operation, UserMixin
from tests.gateway.conftest import (
    IMAGE,
    INFRA,
    OCCI_JSON,
    OS_SCHEME,
    Node,
    category,
    compute_categories,
    entity_id,
    path_of,
    text_plain,
)

pytestmark = [pytest.mark.libvirt, pytest.mark.redis]

TAGS = "http://example.com/occi/tags#"
COMPUTE_KIND = category("compute", INFRA, "kind")
SSH_KEY = category("ssh_key", "http://schemas.ogf.org/occi/infrastructure/credentials#", "mixin")
USER_DATA = category("user_data", "http://schemas.ogf.org/occi/infrastructure/compute#", "mixin")
OS_USER_DATA = category("user_data", "http://schemas.openstack.org/compute/instance#", "mixin")
GOOD_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHbL2xkH0N7V5R2A7Q0y2pX1f3m6V4cK8bJm9u0a1b2c u@h"


def rows(node: Node) -> tuple[int, int, int]:
    """Entities, their mixin rows and operations in the store."""
    with node.store.session() as session:
        return tuple(int(session.scalar(select(func.count()).select_from(table)) or 0)
                     for table in (EntityRow, EntityMixin, Operation))  # type: ignore[return-value]


def user_mixin(term: str, location: str | None = None, scheme: str = TAGS) -> str:
    where = f'; location="{location}"' if location is not None else ""
    return f"Category: {term}; scheme=\"{scheme}\"; class=\"mixin\"{where}\r\n"


def tag_category(term: str) -> str:
    return category(term, TAGS, "mixin")


def listing(node: Node, path: str, user: str = "root", **headers: str) -> list[str]:
    response = node.get(path, user=user, headers={"Accept": "text/uri-list", **headers})
    assert response.status_code == 200, response.get_data(as_text=True)
    return [path_of(line) for line in response.get_data(as_text=True).split()]


# --- query interface ----------------------------------------------------------------------


@pytest.mark.parametrize("accept", ["text/plain", "text/occi", OCCI_JSON])
def test_query_interface_is_the_same_on_both_paths(node: Node, accept: str) -> None:
    plain = node.get("/-/", headers={"Accept": accept})
    well_known = node.get("/.well-known/org/ogf/occi/-/", headers={"Accept": accept})

    assert plain.status_code == well_known.status_code == 200
    assert plain.get_data() == well_known.get_data()
    assert plain.headers.get_all("Category") == well_known.headers.get_all("Category")
    if accept == OCCI_JSON:
        document = plain.get_json()
        assert f"{INFRA}compute" in {f"{k['scheme']}{k['term']}" for k in document["kinds"]}
        assert f"{OS_SCHEME}{IMAGE}" in {f"{m['scheme']}{m['term']}" for m in document["mixins"]}


def test_query_interface_filtered_by_category(node: Node) -> None:
    response = node.get("/-/", headers={"Category": category("storage", INFRA, "kind")})

    assert response.status_code == 200
    terms = {line.split(";")[0].removeprefix("Category: ") + "|" + line.split('scheme="')[1]
             .split('"')[0] for line in response.get_data(as_text=True).splitlines()}
    storage_action = "http://schemas.ogf.org/occi/infrastructure/storage/action#"
    assert f"storage|{INFRA}" in terms
    assert {f"online|{storage_action}", f"offline|{storage_action}"} <= terms
    assert "resource|http://schemas.ogf.org/occi/core#" in terms
    assert f"compute|{INFRA}" not in terms
    assert f"{IMAGE}|{OS_SCHEME}" not in terms
    unfiltered = node.get("/-/").get_data(as_text=True).splitlines()
    assert len(terms) < len(unfiltered)


def test_query_interface_filter_with_unknown_category_is_400(node: Node) -> None:
    response = node.get("/-/", headers={"Category": tag_category("nothing")})
    assert response.status_code == 400
    assert f"{TAGS}nothing" in response.get_data(as_text=True)


def test_user_mixin_lifecycle_through_the_query_interface(node: Node) -> None:
    response = node.post_text("/-/", user_mixin("project-x", "/project-x/"), user="alice")
    assert response.status_code == 200, response.get_data(as_text=True)
    qi = node.get("/-/", user="alice").get_data(as_text=True)
    assert f'Category: project-x; scheme="{TAGS}"; class="mixin"' in qi
    assert 'location="/project-x/"' in qi
    assert "project-x" not in node.get("/-/", user="bob").get_data(as_text=True)
    assert node.get("/project-x/", user="alice").status_code == 200

    response = node.request("DELETE", "/-/", user="alice", data=user_mixin("project-x"),
                            headers={"Content-Type": "text/plain"})

    assert response.status_code == 200, response.get_data(as_text=True)
    assert "project-x" not in node.get("/-/", user="alice").get_data(as_text=True)
    assert node.get("/project-x/", user="alice").status_code == 404
    with node.store.session() as session:
        assert session.get(UserMixin, f"{TAGS}project-x") is None


@pytest.mark.parametrize(("body", "status", "words"), [
    (user_mixin("std", "/std/", scheme="http://schemas.ogf.org/occi/infrastructure#"), 400,
     "reserved"),
    (user_mixin("nowhere"), 400, "needs a location"),
    (user_mixin("clash", "/compute/"), 409, "location /compute/ is taken"),
    (user_mixin("relative", "no-slash"), 400, "must be a path ending in '/'"),
    (f'Category: weird; scheme="{TAGS}"; class="kind"; location="/weird/"\r\n', 400,
     "only mixins"),
])
def test_bad_user_mixins_are_refused(node: Node, body: str, status: int, words: str) -> None:
    response = node.post_text("/-/", body)

    assert response.status_code == status
    assert words in response.get_data(as_text=True)
    with node.store.session() as session:
        assert session.scalar(select(func.count()).select_from(UserMixin)) == 0


def test_user_mixin_location_taken_by_another_mixin_is_409(node: Node) -> None:
    assert node.post_text("/-/", user_mixin("first", "/shared/")).status_code == 200
    response = node.post_text("/-/", user_mixin("second", "/shared/"))
    assert response.status_code == 409
    assert "/shared/" in response.get_data(as_text=True)


@pytest.mark.parametrize("body", [
    f'Category: compute; scheme="{INFRA}"; class="kind"\r\n',
    f'Category: {IMAGE}; scheme="{OS_SCHEME}"; class="mixin"\r\n',
    f'Category: ssh_key; scheme="{INFRA[:-1]}/credentials#"; class="mixin"\r\n',
])
def test_deleting_a_provider_category_is_403(node: Node, body: str) -> None:
    response = node.request("DELETE", "/-/", data=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 403
    assert "defined by the provider" in response.get_data(as_text=True)
    assert body.split(";")[0].removeprefix("Category: ") in node.get("/-/").get_data(
        as_text=True)


def test_put_on_a_kind_collection_is_405_with_allow(node: Node) -> None:
    response = node.request("PUT", "/compute/", data="", headers={"Content-Type": "text/plain"})
    assert response.status_code == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST",
                                                                          "DELETE"}


# --- mixin collections and filters --------------------------------------------------------


@pytest.fixture
def three(node: Node) -> list[str]:
    """Three computes of alice titled a, b, c (not provisioned: the API alone answers)."""
    return [node.create_compute(user="alice", attributes={"occi.core.title": title})
            for title in "abc"]


def test_mixin_collection_membership(node: Node, three: list[str]) -> None:
    assert node.post_text("/-/", user_mixin("web", "/web/"), user="alice").status_code == 200
    a, b, c = (path_of(x) for x in three)

    response = node.request("POST", "/web/", user="alice",
                            headers={"X-OCCI-Location": f"http://localhost{a}, {b}",
                                     "Content-Type": "text/occi"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert sorted(path_of(x) for x in response.get_data(as_text=True).split()
                  if "/compute/" in x) == sorted([a, b])
    assert sorted(listing(node, "/web/", user="alice")) == sorted([a, b])
    assert f"{TAGS}web" in node.get_json(a, user="alice")["mixins"]
    assert f"{TAGS}web" not in node.get_json(c, user="alice")["mixins"]

    response = node.request("PUT", "/web/", user="alice", data=f"http://localhost{c}\r\n",
                            headers={"Content-Type": "text/uri-list"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert listing(node, "/web/", user="alice") == [c]

    response = node.request("DELETE", "/web/", user="alice",
                            headers={"X-OCCI-Location": c, "Content-Type": "text/occi"})
    assert response.status_code == 200
    assert listing(node, "/web/", user="alice") == []
    assert node.row(c) is not None  # disassociated, not deleted


def test_collection_filtered_by_category_and_attribute(node: Node, three: list[str]) -> None:
    a, b, c = (path_of(x) for x in three)
    node.post_text("/-/", user_mixin("db", "/db/"), user="alice")
    node.request("POST", "/db/", user="alice", data=f"http://localhost{b}\r\nhttp://localhost{c}",
                 headers={"Content-Type": "text/uri-list"})
    storage = path_of(node.create_storage(user="alice"))

    assert sorted(listing(node, "/", user="alice")) == sorted([a, b, c, storage])
    by_tag = listing(node, "/compute/", user="alice", Category=tag_category("db"))
    assert sorted(by_tag) == sorted([b, c])
    by_title = listing(node, "/compute/", user="alice",
                       **{"X-OCCI-Attribute": 'occi.core.title="c"'})
    assert by_title == [c]
    both = listing(node, "/compute/", user="alice", Category=tag_category("db"),
                   **{"X-OCCI-Attribute": 'occi.core.title="a"'})
    assert both == []
    by_kind = listing(node, "/storage/", user="alice", Category=category("storage", INFRA, "kind"))
    assert by_kind == [storage]
    assert listing(node, "/compute/", user="alice",
                   Category=category("storage", INFRA, "kind")) == []
    # filters come as header fields even when text/plain is wanted back (pOCCI, rOCCI-api)
    response = node.get("/compute/", user="alice",
                        headers={"Content-Type": "text/occi",
                                 "X-OCCI-Attribute": 'occi.core.title="b"'})
    assert response.get_data(as_text=True) == f"X-OCCI-Location: http://localhost{b}\r\n"


def test_pagination(node: Node, three: list[str]) -> None:
    paths = [path_of(x) for x in three]

    first = node.get("/compute/?page=1&number=2", user="alice",
                     headers={"Accept": "text/uri-list"})
    semicolon = node.get("/compute/?page=1;number=2", user="alice",
                         headers={"Accept": "text/uri-list"})

    assert first.status_code == semicolon.status_code == 200
    assert first.get_data() == semicolon.get_data()
    assert [path_of(x) for x in first.get_data(as_text=True).split()] == paths[:2]
    assert listing(node, "/compute/?page=2&number=2", user="alice") == paths[2:]
    assert listing(node, "/compute/?page=7&number=2", user="alice") == []
    assert listing(node, "/compute/?number=1", user="alice") == paths[:1]
    with_filter = listing(node, "/compute/?page=2&number=1", user="alice",
                          **{"X-OCCI-Attribute": 'occi.core.title="b"'})
    assert with_filter == []
    json_page = node.get("/compute/?page=2;number=2", user="alice",
                         headers={"Accept": OCCI_JSON}).get_json()
    assert [r["title"] for r in json_page["resources"]] == ["c"]


@pytest.mark.parametrize(("query", "status"), [
    ("page=1&number=1001", 413),
    ("page=0&number=2", 400),
    ("page=1&number=0", 400),
    ("page=x&number=2", 400),
    ("page=1;number=two", 400),
])
def test_bad_pages(node: Node, query: str, status: int) -> None:
    response = node.get(f"/compute/?{query}")
    assert response.status_code == status
    assert response.get_data(as_text=True).strip()


# --- addressing and negotiation -----------------------------------------------------------


def test_collection_without_slash_redirects(node: Node) -> None:
    response = node.get("/compute")
    assert response.status_code == 301
    assert response.headers["Location"].endswith("/compute/")
    assert node.get("/nothing-here").status_code == 404


def test_uri_list_only_for_listings(node: Node) -> None:
    compute = node.create_compute()
    accept = {"Accept": "text/uri-list"}

    on_entity = node.get(compute, headers=accept)
    on_collection = node.get("/compute/", headers=accept)
    on_qi = node.get("/-/", headers=accept)

    assert on_entity.status_code == 400
    assert on_entity.get_data(as_text=True).startswith("# ")
    assert on_collection.status_code == 200
    assert on_collection.get_data(as_text=True) == f"{compute}\r\n"
    assert on_collection.headers["Content-Type"] == "text/uri-list"
    assert on_qi.status_code == 400


def test_unacceptable_accept_and_content_type_are_406(node: Node) -> None:
    png = node.get("/compute/", headers={"Accept": "image/png"})
    assert png.status_code == 406
    assert "text/plain" in png.get_data(as_text=True)
    xml = node.request("POST", "/compute/", data="<compute/>",
                       headers={"Content-Type": "application/xml"})
    assert xml.status_code == 406
    assert "application/xml" in xml.get_data(as_text=True)
    assert node.count_entities() == 0


@pytest.mark.parametrize("accept", ["text/plain", "text/occi", "text/occi+plain", OCCI_JSON,
                                    "application/json", "text/plain,text/occi;q=0.2", "*/*"])
def test_negotiated_type_is_echoed(node: Node, accept: str) -> None:
    response = node.get("/-/", headers={"Accept": accept})
    expected = {"text/plain,text/occi;q=0.2": "text/plain", "*/*": "text/plain"}.get(accept,
                                                                                      accept)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == expected


@pytest.mark.parametrize(("agent", "status"), [
    ("x OCCI/1.3", 501), ("curl/8 OCCI/2.0", 501), ("rOCCI-cli/4.3 OCCI/1.1", 200),
    ("pOCCI OCCI/1.2", 200), ("curl/8.0", 200), (None, 200),
])
def test_client_version(node: Node, agent: str | None, status: int) -> None:
    headers = {"User-Agent": agent} if agent else {}
    response = node.get("/-/", headers=headers)
    assert response.status_code == status
    if status == 501:
        assert "OCCI 1.2" in response.get_data(as_text=True)


def test_server_header_names_the_occi_versions(node: Node) -> None:
    for response in (node.get("/-/"), node.get("/nothing/"), node.get("/-/", user=None)):
        server = response.headers["Server"]
        assert "OCCI/1.2" in server.split() and "OCCI/1.1" in server.split()
        assert server.startswith("nimbostratus/")


def test_text_occi_answers_carry_ok(node: Node) -> None:
    compute = node.create_compute()
    accept = {"Accept": "text/occi"}

    entity = node.get(compute, headers=accept)
    collection = node.get("/compute/", headers=accept)
    qi = node.get("/-/", headers=accept)
    deleted = node.request("DELETE", compute, headers=accept)

    for response in (entity, collection, qi, deleted):
        assert response.status_code == 200
        assert response.get_data(as_text=True) == "OK"
        assert response.headers["Content-Type"] == "text/occi"
    assert entity.headers["Category"].startswith(f'compute; scheme="{INFRA}"; class="kind"')
    assert f'occi.core.id="urn:uuid:{entity_id(compute)}"' in entity.headers["X-OCCI-Attribute"]
    assert collection.headers["X-OCCI-Location"] == compute
    assert len(qi.headers.get_all("Category")) == 1  # one field, comma-joined


# --- errors -------------------------------------------------------------------------------


def test_error_bodies_in_each_rendering(node: Node) -> None:
    missing = "/compute/5f1c0b6e-2a4d-4c1e-9b7a-0d3e8f6a1c20"

    plain = node.get(missing)
    occi = node.get(missing, headers={"Accept": "text/occi"})
    as_json = node.get(missing, headers={"Accept": OCCI_JSON})

    assert plain.status_code == occi.status_code == as_json.status_code == 404
    assert plain.get_data(as_text=True) == "no compute 5f1c0b6e-2a4d-4c1e-9b7a-0d3e8f6a1c20\r\n"
    assert occi.headers["X-OCCI-Error"] == "no compute 5f1c0b6e-2a4d-4c1e-9b7a-0d3e8f6a1c20"
    assert occi.headers["Content-Type"] == "text/occi"
    assert as_json.get_json() == {"code": 404, "message":
                                  "no compute 5f1c0b6e-2a4d-4c1e-9b7a-0d3e8f6a1c20"}


def _with_compute(*lines: str) -> str:
    return "".join(f"Category: {c}\r\n" for c in compute_categories()) + "".join(
        f"{line}\r\n" for line in lines)


# notes §11: each body must be refused with 400 and leave nothing behind
MALFORMED_TEXT = {
    "category without scheme": 'Category: compute; class="kind"\r\n',
    "unknown category without class":
        f'Category: compute; scheme="{INFRA}"; class="kind"\r\n'
        'Category: nowhere; scheme="http://example.com/x#"\r\n',
    "class myClass": f'Category: compute; scheme="{INFRA}"; class="myClass"\r\n',
    "field Nocategory": _with_compute('Nocategory: compute; scheme="x#"; class="kind"'),
    "field Category2": _with_compute('Category2: compute; scheme="x#"; class="kind"'),
    "unterminated quote in category":
        f'Category: compute; scheme="{INFRA}; class="kind"\r\n',
    "unterminated quote in link":
        _with_compute(f'Link: </compute/x?action=stop>; rel="{INFRA[:-1]}/compute/action#stop'),
    "unterminated quote in attribute": _with_compute('X-OCCI-Attribute: occi.core.title="103'),
    "attribute without value": _with_compute("X-OCCI-Attribute: occi.core.title"),
    "attributes with junk definition":
        f'Category: compute; scheme="{INFRA}"; class="kind"; attributes="a{{asdasd}}"\r\n'
        f'Category: {IMAGE}; scheme="{OS_SCHEME}"; class="mixin"\r\n',
    "memory with exponent": _with_compute("X-OCCI-Attribute: occi.compute.memory=1e-5"),
    "cores not an integer": _with_compute('X-OCCI-Attribute: occi.compute.cores="many"'),
    "architecture outside the enum":
        _with_compute('X-OCCI-Attribute: occi.compute.architecture="sparc"'),
    "unknown kind": 'Category: foo; scheme="http://example.com/x#"; class="kind"\r\n',
    "kind not served here":
        f'Category: storage; scheme="{INFRA}"; class="kind"\r\n'
        "X-OCCI-Attribute: occi.storage.size=1.0\r\n",
    "mixin that does not apply":
        _with_compute(f'Category: ipnetwork; scheme="{INFRA[:-1]}/network#"; class="mixin"'),
    "bad id": _with_compute('X-OCCI-Attribute: occi.core.id="not a/valid id"'),
    "link to nothing":
        _with_compute(f'Link: </storage/nothing>; rel="{INFRA}storage"; '
                      f'category="{INFRA}storagelink"'),
}


@pytest.mark.parametrize("body", MALFORMED_TEXT.values(), ids=MALFORMED_TEXT.keys())
def test_malformed_text_create_is_400_and_leaves_nothing(node: Node, body: str) -> None:
    node.create_compute()  # something that must survive
    before = rows(node)

    response = node.post_text("/compute/", body)

    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_data(as_text=True).strip()
    assert rows(node) == before


MALFORMED_JSON = {
    "not json": "{'kind': 1}",
    "no kind": json.dumps({"mixins": [f"{OS_SCHEME}{IMAGE}"]}),
    "kind not a string": json.dumps({"kind": 7, "mixins": [f"{OS_SCHEME}{IMAGE}"]}),
    "attributes not an object": json.dumps({"kind": f"{INFRA}compute", "attributes": [1]}),
    "one good one bad": json.dumps({"resources": [
        {"kind": f"{INFRA}compute", "mixins": [f"{OS_SCHEME}{IMAGE}"]},
        {"kind": f"{INFRA}compute", "mixins": [f"{OS_SCHEME}{IMAGE}"],
         "attributes": {"occi.compute.cores": "lots"}}]}),
}


@pytest.mark.parametrize("body", MALFORMED_JSON.values(), ids=MALFORMED_JSON.keys())
def test_malformed_json_create_is_400_and_leaves_nothing(node: Node, body: str) -> None:
    before = rows(node)

    response = node.request("POST", "/compute/", data=body,
                            headers={"Content-Type": OCCI_JSON, "Accept": OCCI_JSON})

    assert response.status_code == 400
    document = response.get_json()
    assert document["code"] == 400 and document["message"]
    assert rows(node) == before


def test_json_collection_create_makes_all(node: Node) -> None:
    one = {"kind": f"{INFRA}compute", "mixins": [f"{OS_SCHEME}{IMAGE}"], "title": "one"}
    two = {**one, "title": "two"}
    response = node.post_json("/compute/", {"resources": [one, two]})
    assert response.status_code == 201
    locations = response.get_json()
    assert len(locations) == 2 and response.headers["Location"] == locations[0]
    assert {node.get_json(x)["title"] for x in locations} == {"one", "two"}


@pytest.mark.parametrize(("header", "value"), [
    ("X-OCCI-Location", "http://localhost/compute/ with space"),
    ("X-OCCI-Location", "/storage/not-a-compute-at-all"),
])
def test_bad_locations_for_a_mixin_collection(node: Node, header: str, value: str) -> None:
    node.post_text("/-/", user_mixin("grp", "/grp/"))
    response = node.request("POST", "/grp/", headers={header: value,
                                                      "Content-Type": "text/occi"})
    assert response.status_code in (400, 404)
    with node.store.session() as session:
        assert session.scalar(select(func.count()).select_from(EntityMixin).where(
            EntityMixin.mixin == f"{TAGS}grp")) == 0


def test_invalid_uri_in_uri_list_is_400(node: Node) -> None:
    node.post_text("/-/", user_mixin("grp", "/grp/"))
    response = node.request("POST", "/grp/", data="not a uri at all\r\n",
                            headers={"Content-Type": "text/uri-list"})
    assert response.status_code == 400


def test_compute_without_os_tpl_names_the_images(node: Node) -> None:
    response = node.post_text("/compute/", text_plain([COMPUTE_KIND]))
    assert response.status_code == 400
    assert response.get_data(as_text=True) == (
        f"an os_tpl mixin is required (registered images: {IMAGE})\r\n")
    assert node.count_entities() == 0


# --- contextualization --------------------------------------------------------------------


def test_ssh_key_must_be_openssh(node: Node) -> None:
    bad = text_plain([*compute_categories(), SSH_KEY],
                     {"occi.credentials.ssh.publickey": "-----BEGIN PUBLIC KEY----- MIIB"})
    response = node.post_text("/compute/", bad)
    assert response.status_code == 400
    assert "OpenSSH public key" in response.get_data(as_text=True)
    assert node.count_entities() == 0

    good = text_plain([*compute_categories(), SSH_KEY],
                      {"occi.credentials.ssh.publickey": GOOD_KEY})
    location = node.create("compute", good)
    assert node.get_json(location)["attributes"]["occi.credentials.ssh.publickey"] == GOOD_KEY


def test_both_user_data_mixins_are_409(node: Node) -> None:
    data = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
    body = text_plain([*compute_categories(), USER_DATA, OS_USER_DATA],
                      {"occi.compute.userdata": data, "org.openstack.compute.user_data": data})
    response = node.post_text("/compute/", body)
    assert response.status_code == 409
    assert "not both" in response.get_data(as_text=True)
    assert rows(node) == (0, 0, 0)


def test_user_data_base64_is_kept_compact(node: Node) -> None:
    data = base64.encodebytes(b"#!/bin/sh\n" + b"echo hello world\n" * 8).decode()
    assert "\n" in data.strip()  # wrapped lines, as base64(1) writes them
    location = node.create("compute", text_plain([*compute_categories(), OS_USER_DATA],
                                                 {"org.openstack.compute.user_data": data}))
    attrs = node.get_json(location)["attributes"]
    assert attrs["org.openstack.compute.user_data"] == "".join(data.split())
    assert attrs["occi.compute.state.message"] == "queued"


def test_user_data_not_base64_is_kept_with_a_note(node: Node) -> None:
    raw = "#cloud-config\nruncmd: [touch, /tmp/x]"
    location = node.create("compute", text_plain([*compute_categories(), USER_DATA],
                                                 {"occi.compute.userdata": raw}))

    attrs = node.get_json(location)["attributes"]
    assert attrs["occi.compute.userdata"] == raw
    assert "not base64" in attrs["occi.compute.state.message"]
    node.run_jobs()
    assert node.get_json(location)["attributes"]["occi.compute.state"] == "active"


def test_user_data_cannot_change_after_create(node: Node) -> None:
    data = base64.b64encode(b"one").decode()
    location = node.create("compute", text_plain([*compute_categories(), USER_DATA],
                                                 {"occi.compute.userdata": data}))
    other = base64.b64encode(b"two").decode()
    response = node.post_text(location, text_plain([], {"occi.compute.userdata": other}))
    assert response.status_code == 400
    assert node.get_json(location)["attributes"]["occi.compute.userdata"] == data


# --- who sees what ------------------------------------------------------------------------


def test_missing_credentials_are_401_with_a_challenge(node: Node) -> None:
    response = node.get("/compute/", user=None)
    assert response.status_code == 401
    assert response.headers.get_all("WWW-Authenticate") == ['Basic realm="nimbostratus"']
    wrong = node.get("/compute/", user=None, headers={
        "Authorization": "Basic " + base64.b64encode(b"alice:wrong").decode()})
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == 'Basic realm="nimbostratus"'
    post = node.post_text("/compute/", text_plain(compute_categories()), user="nobody")
    assert post.status_code == 401
    assert node.count_entities() == 0


def test_users_see_only_their_own_entities(node: Node) -> None:
    alices = node.create_compute(user="alice")
    bobs = node.create_compute(user="bob")
    bobs_storage = node.create_storage(user="bob")

    assert node.get(alices, user="bob").status_code == 404
    assert node.get(bobs, user="alice").status_code == 404
    assert node.request("DELETE", alices, user="bob").status_code == 404
    assert node.action(alices, "start", user="bob").status_code == 404
    assert node.post_text(alices, text_plain([], {"occi.core.title": "mine"}),
                          user="bob").status_code == 404
    assert listing(node, "/compute/", user="alice") == [path_of(alices)]
    assert listing(node, "/compute/", user="bob") == [path_of(bobs)]
    assert sorted(listing(node, "/compute/", user="root")) == sorted(
        [path_of(alices), path_of(bobs)])
    assert node.get(alices, user="root").status_code == 200
    # nor can alice link bob's storage to her compute
    link = (f'<{path_of(bobs_storage)}>; rel="{INFRA}storage"; '
            f'category="{INFRA}storagelink"')
    response = node.post_text("/compute/", text_plain(compute_categories(), links=[link]),
                              user="alice")
    assert response.status_code == 400
    assert node.row(alices) is not None and (node.row(alices).attributes or {}).get(  # type: ignore[union-attr]
        "occi.core.title") is None


def test_delete_collection_deletes_only_the_callers(node: Node) -> None:
    alices = node.create_compute(user="alice")
    bobs = node.create_compute(user="bob")

    response = node.request("DELETE", "/compute/", user="alice")

    assert response.status_code == 200
    assert node.get(alices, user="alice").status_code == 404
    assert node.get(bobs, user="bob").status_code == 200


# --- HEAD reads like GET, and changes nothing -----------------------------------------------


def test_head_reads_like_get_without_side_effects(node: Node) -> None:
    compute = node.create_compute(attributes={"occi.compute.cores": 2,
                                              "occi.compute.memory": 1.0})
    node.post_text("/-/", user_mixin("watch", "/watch/"))
    before = rows(node)
    with node.store.session() as session:
        operations = session.scalar(select(func.count()).select_from(Operation))

    for path in ("/-/", "/.well-known/org/ogf/occi/-/", "/compute/", compute, "/watch/", "/"):
        get = node.get(path)
        head = node.request("HEAD", path)
        assert head.status_code == get.status_code == 200, path
        assert head.get_data() == b"", path
        assert head.headers["Content-Type"] == get.headers["Content-Type"], path

    assert rows(node) == before
    with node.store.session() as session:
        assert session.scalar(select(func.count()).select_from(Operation)) == operations
    assert node.get_json(compute)["mixins"] == [f"{OS_SCHEME}{IMAGE}"]


# --- more of the protocol ----------------------------------------------------------------


def test_action_on_a_kind_collection_needs_every_member_to_allow_it(node: Node) -> None:
    first, second = node.create_compute(), node.create_compute()
    node.run_jobs()
    node.action(first, "stop")
    node.run_jobs()
    stop = text_plain([category("stop", "http://schemas.ogf.org/occi/infrastructure/compute/"
                                "action#", "action")])

    refused = node.post_text("/compute/?action=stop", stop)

    assert refused.status_code == 409
    assert "valid now: start, save" in refused.get_data(as_text=True)
    assert node.row(second).state_message is None  # type: ignore[union-attr]  # nothing queued
    start = stop.replace("stop", "start")
    assert node.post_text("/compute/?action=start", start).status_code == 409
    node.action(second, "stop")
    node.run_jobs()
    response = node.post_text("/compute/?action=start", start)
    assert response.status_code == 200
    node.run_jobs()
    assert {node.row(x).state for x in (first, second)} == {"active"}  # type: ignore[union-attr]


def test_quote_escaping_and_comma_joined_headers(node: Node) -> None:
    """OCCI-WG 1.1 vector (notes §11): commas and escaped quotes inside a joined header."""
    attributes = ('occi.compute.memory=3.6, occi.core.title="How\'s your quotes escaping? \\", '
                  'occi.compute.memory=1.0", occi.core.summary="Thu, 20 Aug 2015 13:48:50 '
                  '+0200."')
    response = node.request("POST", "/compute/", headers={
        "Content-Type": "text/occi", "cATEGORY": ", ".join(compute_categories()),
        "x-occi-attribute": attributes})

    assert response.status_code == 201, response.get_data(as_text=True)
    document = node.get_json(response.headers["Location"])
    assert document["attributes"]["occi.compute.memory"] == 3.6
    assert document["title"] == 'How\'s your quotes escaping? ", occi.compute.memory=1.0'
    assert document["summary"] == "Thu, 20 Aug 2015 13:48:50 +0200."


def test_unknown_attribute_is_400_and_speed_of_occi_1_1_is_accepted(node: Node) -> None:
    unknown = node.post_text("/compute/", text_plain(compute_categories(), {"foo.bar": 1}))
    assert unknown.status_code == 400
    assert "foo.bar" in unknown.get_data(as_text=True)
    assert node.count_entities() == 0
    speed = node.post_text("/compute/", text_plain(compute_categories(),
                                                   {"occi.compute.speed": 2.0}))
    assert speed.status_code == 201


def test_replacing_the_os_template_is_501(node: Node) -> None:
    compute = node.create_compute()
    image = node.tmp_path / "other.img"
    image.write_bytes(b"other")
    from gateway.services.mixins import register_image

    register_image(node.store, "other", str(image))
    other = category("other", OS_SCHEME, "mixin")

    update = node.post_text(compute, text_plain([other]))
    replace = node.request("PUT", compute, data=text_plain([COMPUTE_KIND, other]),
                           headers={"Content-Type": "text/plain"})

    assert update.status_code == replace.status_code == 501
    assert "create a new compute" in update.get_data(as_text=True)
    assert f"{OS_SCHEME}{IMAGE}" in node.get_json(compute)["mixins"]


def test_a_user_mixin_is_private_to_its_owner(node: Node) -> None:
    assert node.post_text("/-/", user_mixin("mine", "/mine/"), user="alice").status_code == 200
    compute = node.create_compute(user="alice")
    node.request("POST", "/mine/", user="alice",
                 headers={"X-OCCI-Location": compute, "Content-Type": "text/occi"})

    assert node.get("/mine/", user="bob").status_code == 404
    assert node.request("PUT", "/mine/", user="bob", headers={
        "X-OCCI-Location": compute, "Content-Type": "text/occi"}).status_code == 404
    taken = node.post_text("/-/", user_mixin("theirs", "/mine/"), user="bob")
    assert taken.status_code == 409
    deleted = node.request("DELETE", "/-/", user="bob", data=user_mixin("mine"),
                           headers={"Content-Type": "text/plain"})
    assert deleted.status_code == 404
    assert listing(node, "/mine/", user="alice") == [path_of(compute)]
    # the owner deleting the mixin removes it from its members
    node.request("DELETE", "/-/", user="alice", data=user_mixin("mine"),
                 headers={"Content-Type": "text/plain"})
    assert f"{TAGS}mine" not in node.get_json(compute, user="alice")["mixins"]


def test_provider_templates_cannot_be_associated_through_their_collection(node: Node) -> None:
    compute = node.create_compute()
    response = node.request("POST", f"/mixin/os_tpl/{IMAGE}/", headers={
        "X-OCCI-Location": compute, "Content-Type": "text/occi"})
    assert response.status_code == 400
    assert "provider template" in response.get_data(as_text=True)
    assert listing(node, f"/mixin/os_tpl/{IMAGE}/") == [path_of(compute)]
