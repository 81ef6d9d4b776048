"""HTTP API, one module per resource; each exports `routes`."""

from __future__ import annotations

from coordinator.server.api import events, files, jobs, meta, previews, tasks, web, workers

ROUTE_MODULES = (meta, jobs, previews, tasks, files, workers, events, web)
