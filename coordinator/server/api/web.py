"""The dashboard: static files from coordinator/server/dashboard, no build step.

The page and its scripts are public (they hold no secret); everything they
show comes from the API with the farm token the person signs in with. Only
plain file names directly inside dashboard/ are served, so no request can reach
another file, and a strict Content-Security-Policy keeps the page to its own
scripts and styles.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

# The dashboard's static files.
WEB_DIR = Path(__file__).resolve().parent.parent / "dashboard"


routes = web.RouteTableDef()

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\.(js|css|svg)")
_TYPES = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:;"
        " media-src blob:; connect-src 'self'; font-src 'self'; base-uri 'none';"
        " form-action 'self';"
        " frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # a coordinator upgrade shows at once
}


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    return _file("index.html", "text/html")


@routes.get("/ui/{name}")
async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    match = _NAME.fullmatch(name)
    if match is None:
        raise web.HTTPNotFound(text=f"no dashboard file {name!r}")
    return _file(name, _TYPES[match[1]])


def _file(name: str, content_type: str) -> web.Response:
    path = WEB_DIR / name
    if not path.is_file():
        raise web.HTTPNotFound(text=f"no dashboard file {name!r}")
    return web.Response(
        body=path.read_bytes(), content_type=content_type, charset="utf-8", headers=HEADERS
    )
