"""The client side of the farm's HTTP API: the one HTTP client (``http``) and
the zeroconf browser (``browser``). Imported by the CLI, the worker agent and
the add-on; never imports the server.
"""

from coordinator.client.http import (
    AuthError,
    ConflictError,
    FarmClient,
    FarmClientError,
    NotFoundError,
    Unreachable,
    WorkerCredentials,
)

__all__ = [
    "AuthError",
    "ConflictError",
    "FarmClient",
    "FarmClientError",
    "NotFoundError",
    "Unreachable",
    "WorkerCredentials",
]
