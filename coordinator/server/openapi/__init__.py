"""The OpenAPI 3.1 document the coordinator serves at /api/v1/openapi.json.

Generated from the wire models in `coordinator.core.models` (schemas.py
converts them), the job types' settings, and one row per operation
(operations.py). tests/server/test_openapi.py checks that it lists exactly
the routes the app serves, and the API tests check every response they get
against it; docs/api.md is generated from it
(`python -m coordinator openapi-docs --out docs/api.md`).
"""

from __future__ import annotations

from coordinator.server.openapi.document import openapi_document

__all__ = ["openapi_document"]
