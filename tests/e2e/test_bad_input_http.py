"""Every POST route of every service, sent what the stores cannot hold or people should not type.

The routes come from the embedded app's OpenAPI document, so a route added later is covered
without a change here. Each field of each request body gets the hostile values its type calls
for (control characters, text-direction overrides in names, 100,000-character strings and list
items, times in year 1 or 9999 or given as numbers, ``true`` for a number), each body the ones
no route may take (not JSON, not UTF-8, nested 1,000 deep), then hypothesis sends a few hundred
generated bodies. Never a 5xx; every 422 names, in ``problems``, a field the caller sent, and
echoes no more than a short prefix of any value. A time in any route's query, and a number in any
route's path, are bounded the same way.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.platform.auth import mint_token
from services.platform.settings import Settings
from services.wiring import embedded_app
from tests.conftest import JWT_SECRET
from tests.e2e.test_desk_http import csrf_of, sign_in

pytestmark = pytest.mark.e2e

Schema = Mapping[str, Any]
LONG = "長" * 100_000
SHOWN = 40
# Every role, in the agency that holds each over the whole municipality: a refusal for the
# caller's role would come before the body is read.
ROLES = ["caseworker", "privacy_officer", "meeting_organiser", "supervisor", "approver"]


@dataclass(frozen=True)
class Route:
    path: str
    parameters: dict[str, Schema]
    query: dict[str, Schema]
    body: Schema | None

    def url(self, **given: object) -> str:
        """The path with each parameter filled: an unknown id, a move the route names."""
        values = {n: given.get(n, _example(schema)) for n, schema in self.parameters.items()}
        return self.path.format(**values)

    @property
    def fields(self) -> dict[str, Schema]:
        return dict((self.body or {}).get("properties", {}))


def _example(schema: Schema) -> object:
    if "enum" in schema:
        return schema["enum"][0]
    return 1 if schema.get("type") == "integer" else uuid.uuid4()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    var = Path(tmp_path_factory.mktemp("bad-input")) / "var"
    return embedded_app(Settings(var_dir=var, jwt_secret=JWT_SECRET))


@pytest.fixture(scope="module")
def client(app: FastAPI) -> TestClient:
    token = mint_token(JWT_SECRET, staff_id="s001", agency="zama-jiritsu", roles=ROLES)
    return TestClient(
        app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"}
    )


@pytest.fixture(scope="module")
def api(app: FastAPI) -> dict[str, list[Route]]:
    """Every route of the services by method, each parameter's and the body's schema resolved."""
    document = app.openapi()

    def resolved(schema: Schema) -> Schema:
        """The schema itself: references followed, ``X | None`` read as X."""
        if "$ref" in schema:
            return resolved(document["components"]["schemas"][schema["$ref"].split("/")[-1]])
        kinds = [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]
        if len(kinds) == 1:
            rest = {k: v for k, v in schema.items() if k != "anyOf"}
            return resolved({**rest, **kinds[0]})
        inner = {k: resolved(v) for k, v in schema.get("properties", {}).items()}
        found = {**schema, "properties": inner} if inner else dict(schema)
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                found[key] = resolved(schema[key])
        return found

    def route(path: str, operation: Schema) -> Route:
        def where(place: str) -> dict[str, Schema]:
            given = operation.get("parameters", ())
            return {p["name"]: resolved(p["schema"]) for p in given if p["in"] == place}

        content = operation.get("requestBody", {}).get("content", {}).get("application/json")
        body = resolved(content["schema"]) if content else None
        return Route(path, where("path"), where("query"), body)

    found: dict[str, list[Route]] = {"get": [], "post": []}
    for path, operations in document["paths"].items():
        for method, routes in found.items():
            if method in operations:
                routes.append(route(path, operations[method]))
    return found


@pytest.fixture(scope="module")
def routes(api: dict[str, list[Route]]) -> list[Route]:
    return api["post"]


def test_the_battery_reaches_every_service(routes: list[Route]) -> None:
    prefixes = {r.path.split("/")[1] for r in routes}
    assert prefixes == {"intake", "referral", "meeting", "views"}
    assert sum(r.body is not None for r in routes) >= 30


def hostile(name: str, schema: Schema) -> Iterator[tuple[str, object]]:
    """Values a field of this schema must refuse, each with the field the 422 must name."""
    kind, shape = schema.get("type"), schema.get("format")
    if kind == "string" and shape in ("date-time", "date"):
        day = "0001-01-01" if shape == "date" else "0001-01-01T00:00:00+09:00"
        for value in (day, day.replace("0001", "9999", 1), 1e11, 100_000_000_000, True):
            yield name, value
    elif kind == "string" and shape == "uuid":
        yield from ((name, v) for v in ("not-an-id", 12345))
    elif kind == "string":
        texts: list[object] = ["a\x00b", "a\x1b[31mb", "a\x7fb", "a\x85b", LONG, 3, True]
        if "name" in name or "witness" in name:
            texts += ["仮名\u202e", "\u2066仮名", "仮\u200f名"]
        yield from ((name, v) for v in texts)
    elif kind == "boolean":
        yield from ((name, v) for v in (1, "true", "yes"))
    elif kind == "number":
        yield from ((name, v) for v in (True, "3", "72"))
    elif kind == "integer":
        yield from ((name, v) for v in (True, "3", 3.5))
    elif kind == "array":
        item = schema.get("items", {})
        if item.get("type") == "object":
            for field, inner in item.get("properties", {}).items():
                for where, bad in hostile(field, inner):
                    yield f"{name}.0.{where}", [{field: bad}]
        else:
            yield from ((f"{name}.0", [v]) for _, v in hostile(name, item))
        yield name, ["a"] * 101
    elif kind == "object" and "additionalProperties" in schema:
        yield f"{name}.family_name", {"family_name": "仮名\u202e"}
        yield f"{name}.x", {"x": "a\x00b"}
        yield name, {"k" * 100_000: "v"}
        yield name, {f"k{n}": "v" for n in range(101)}


def cases(routes: list[Route]) -> Iterator[tuple[Route, str, object]]:
    for route in routes:
        for field, schema in route.fields.items():
            for named, value in hostile(field, schema):
                yield route, named, value


def refusal_names(response: Any, sent: Callable[[str], bool]) -> list[str]:
    """The fields a 422 names, checked to be fields the caller sent or the route declares, and
    to echo no more than a short prefix of any value."""
    assert response.status_code == 422, response.text[:500]
    assert "長" * (SHOWN + 1) not in response.text and "k" * (SHOWN + 1) not in response.text
    problems = response.json()["problems"]
    assert problems
    fields = [str(p["field"]) for p in problems]
    for field in fields:
        parts = field.split(".")
        named = field == "body" or any(sent(".".join(parts[:n])) for n in range(1, len(parts) + 1))
        assert named, fields
    return fields


def test_every_field_of_every_post_route_refuses_what_it_cannot_hold(
    client: TestClient, routes: list[Route]
) -> None:
    missed = []
    for route, named, value in cases(routes):
        top = named.split(".")[0]
        response = client.post(route.url(), json={top: value})
        assert response.status_code < 500, (route.path, named, response.text[:300])
        accepted = response.status_code != 422
        fields = [] if accepted else refusal_names(response, route.fields.__contains__)
        if not any(f == named or f.startswith(f"{named}.") for f in fields):
            missed.append((route.path, named, repr(value)[:40], response.status_code))
    assert missed == []


def test_a_bad_body_is_422_naming_the_body(client: TestClient, routes: list[Route]) -> None:
    deep_list = "[" * 1000 + "]" * 1000
    deep_map = '{"a":' * 1000 + "1" + "}" * 1000
    bodies = [b"{", b'{"a":', b"\xff\xfe\xfd", deep_list.encode(), deep_map.encode(), b"[]"]
    bodies += [b"null", b'"text"', b"1e999"]
    for route in (r for r in routes if r.body is not None):
        for body in bodies:
            response = client.post(
                route.url(), content=body, headers={"Content-Type": "application/json"}
            )
            assert refusal_names(response, lambda _: False) == ["body"], (route.path, body)


def test_a_path_number_out_of_range_names_nothing(client: TestClient, routes: list[Route]) -> None:
    numbered = [(r, n) for r in routes for n, s in r.parameters.items() if s["type"] == "integer"]
    assert numbered  # the audit review, at least
    for route, name in numbered:
        for number in (2**63, 2**64 + 1, -1, "9" * 5000):
            response = client.post(route.url(**{name: number}), json={"note": "確認"})
            assert response.status_code == 404, (route.path, number, response.text[:200])
    replay = client.get(f"/views/audit/entries/{2**63}/replay")
    assert replay.status_code == 404


def test_a_time_in_a_query_is_bounded_too(client: TestClient, api: dict[str, list[Route]]) -> None:
    timed = [
        (route, name, schema["format"])
        for route in api["get"]
        for name, schema in route.query.items()
        if schema.get("format") in ("date", "date-time")
    ]
    assert len(timed) >= 8
    for route, name, shape in timed:
        for value in ("0001-01-01", "9999-12-31"):
            given = value if shape == "date" else f"{value}T00:00:00+09:00"
            response = client.get(route.url(), params={name: given})
            assert response.status_code == 422, (route.path, name, response.text[:200])
            assert name in refusal_names(response, route.query.__contains__)


CONTROLS = ["\x00", "\x1b", "\x7f", "\x85", "\u202e", "\u2066", "\ud800", "\u2028", "\t", "\n"]
text = st.text(st.characters(codec="utf-8") | st.sampled_from(CONTROLS), max_size=50)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | text
values = st.recursive(
    scalars | st.just(LONG[:3000]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=10,
)


@st.composite
def generated(draw: st.DrawFn, routes: list[Route]) -> tuple[Route, dict[str, object]]:
    route = draw(st.sampled_from([r for r in routes if r.body is not None]))
    names = draw(st.lists(st.sampled_from(sorted(route.fields)), max_size=6, unique=True))
    body: dict[str, object] = {}
    for name in names:
        field = route.fields[name]
        bad = [v for _, v in hostile(name, field)]
        body[name] = draw(values | st.sampled_from(bad)) if bad else draw(values)
    if draw(st.booleans()):
        body[draw(text)] = draw(values)
    return route, body


def test_generated_bodies_never_get_a_5xx_and_each_422_names_a_field(
    client: TestClient, routes: list[Route]
) -> None:
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(generated(routes))
    def check(case: tuple[Route, dict[str, object]]) -> None:
        route, body = case
        response = client.post(
            route.url(), content=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        assert response.status_code < 500, (route.path, response.text[:300])
        if response.status_code == 422:
            sent = {*route.fields, *route.parameters, *(str(k)[:SHOWN] for k in body)}
            refusal_names(response, lambda f: f.rstrip("…") in sent or f in sent)

    check()


def test_a_refusal_names_a_long_field_and_value_by_a_short_prefix(client: TestClient) -> None:
    body = {"k" * 100_000: 1, "channel": LONG, "route_in": "self", "caller_kind": "self"}
    response = client.post("/intake/consultations", json=body)
    fields = refusal_names(response, lambda f: f in ("channel", f"{'k' * SHOWN}…"))
    assert sorted(fields) == ["channel", f"{'k' * SHOWN}…"]
    assert len(response.content) < 1000


def test_the_desk_sends_the_hours_typed_on_its_form_as_a_number(
    embedded_settings: Settings,
) -> None:
    """The vital-interest form's hours come as text; the API takes only a JSON number."""
    with TestClient(embedded_app(embedded_settings)) as desk:
        token = mint_token(JWT_SECRET, staff_id="v001", agency="zama-jiritsu", roles=ROLES)
        api = {"Authorization": f"Bearer {token}"}
        person = desk.post("/intake/persons", json={"family_name": "仮名"}, headers=api).json()
        sign_in(desk, role="supervisor")
        page = f"/persons/{person['id']}/vital-interest"
        form = {
            "csrf_token": csrf_of(desk, page),
            "recipients": ["zama-kodomo"],
            "categories": ["family"],
            "reason": "子どもの保護が必要",
            "hours": "24",
        }
        declared = desk.post(page, data=form, follow_redirects=False)
        assert declared.status_code == 303, declared.text[:500]
        [declaration] = desk.get(
            f"/meeting/persons/{person['id']}/vital-interests", headers=api
        ).json()
        assert declaration["recipients"] == ["zama-kodomo"]
