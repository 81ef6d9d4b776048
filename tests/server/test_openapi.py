"""The served OpenAPI document describes exactly the routes the app has."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from coordinator.server.openapi import openapi_document
from tests.conftest import API, AUTH, PUBLIC, api_routes, app_of

Client = TestClient[Any, Any]
METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


@pytest.fixture
async def served(client: Client) -> dict[str, Any]:
    resp = await client.get(f"{API}/openapi.json", headers=AUTH)
    assert resp.status == 200
    document: dict[str, Any] = await resp.json()
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


async def test_lists_exactly_the_apps_routes(client: Client, served: dict[str, Any]) -> None:
    documented = {(method, path) for method, path, _ in operations(served)}
    served_routes = set(api_routes(app_of(client)))
    assert documented - served_routes == set(), "documented but not served"
    assert served_routes - documented == set(), "served but not documented"


async def test_served_document_is_the_module_one(served: dict[str, Any]) -> None:
    assert served == openapi_document()


def test_looks_like_openapi_3_1() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1.")
    assert document["info"]["title"] and document["info"]["version"]
    schemes = document["components"]["securitySchemes"]
    assert set(schemes) == {"farmToken", "workerSecret"}
    for scheme in schemes.values():
        assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for method, path, op in operations(document):
        where = f"{method} {path}"
        assert path.startswith(f"{API}/"), where
        assert op.get("summary"), where
        assert op["responses"], where
        for code, response in op["responses"].items():
            assert re.fullmatch(r"[1-5]\d\d", code), where
            assert response["description"], where
        assert isinstance(op["security"], list), where
        names = {name for requirement in op["security"] for name in requirement}
        assert names <= set(schemes), where
        if (method, path) in PUBLIC:
            assert op["security"] == [], where
        elif path.startswith(f"{API}/worker/"):
            assert names == {"workerSecret"}, where
        else:
            assert names == {"farmToken"}, where
        if (method, path) not in PUBLIC:
            assert "401" in op["responses"], where


def test_path_parameters_are_declared() -> None:
    for method, path, op in operations(openapi_document()):
        in_template = set(re.findall(r"\{(\w+)\}", path))
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == in_template, f"{method} {path}"
        for param in op.get("parameters", []):
            assert param["in"] in ("path", "query", "header"), f"{method} {path}"
            assert "schema" in param
            if param["in"] == "path":
                assert param["required"] is True


def test_every_ref_resolves() -> None:
    document = openapi_document()

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    all_refs = refs(document)
    assert all_refs
    for ref in all_refs:
        assert ref.startswith("#/")
        node: Any = document
        for part in ref[2:].split("/"):
            node = node[part]
        assert isinstance(node, dict)


def test_request_bodies_match_what_the_routes_read() -> None:
    """Bodies are declared where a route needs one (and nowhere else that is GET)."""
    for method, path, op in operations(openapi_document()):
        if method == "GET":
            assert "requestBody" not in op, path
    document = openapi_document()
    for method, path in (
        ("post", f"{API}/jobs"),
        ("post", f"{API}/workers"),
        ("post", f"{API}/files/missing"),
        ("put", f"{API}/files/{{sha256}}"),
        ("put", f"{API}/worker/tasks/{{task_id}}/outputs/{{name}}"),
        ("post", f"{API}/worker/tasks/{{task_id}}/fail"),
    ):
        assert document["paths"][path][method]["requestBody"]["content"], path
