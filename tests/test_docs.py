"""The API reference in docs/ is generated from the OpenAPI document the
coordinator serves; this keeps the committed copy from drifting."""

from __future__ import annotations

from pathlib import Path

from coordinator.cli.apidocs import openapi_markdown
from coordinator.server.openapi import openapi_document

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_api_reference_matches_the_openapi_document() -> None:
    expected = openapi_markdown(openapi_document())
    actual = (DOCS / "api.md").read_text(encoding="utf-8")
    assert actual == expected, (
        "docs/api.md is out of date: run `python -m coordinator openapi-docs --out docs/api.md`"
    )


def test_every_doc_page_the_readme_links_exists() -> None:
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    linked = [part.split(")")[0] for part in readme.split("](")[1:]]
    pages = [link for link in linked if link.startswith("docs/")]
    assert pages, "README should link the docs"
    missing = [page for page in pages if not (DOCS.parent / page).is_file()]
    assert not missing, f"README links missing pages: {missing}"
