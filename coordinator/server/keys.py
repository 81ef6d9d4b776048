"""The typed keys of the aiohttp app and its requests: the one place the API
modules and the app factory meet, so neither imports the other."""

from __future__ import annotations

from aiohttp import web

from coordinator.server.advertiser import Advertiser
from coordinator.server.config import AppConfig
from coordinator.server.farm import Farm
from coordinator.server.hub import Hub

FARM = web.AppKey("farm", Farm)
HUB = web.AppKey("hub", Hub)
CONFIG = web.AppKey("config", AppConfig)
ADVERTISER = web.AppKey("advertiser", Advertiser)  # present when advertising
WORKER = web.RequestKey("worker", dict)  # the authenticated worker's row
WORKER_SECRET = web.RequestKey("worker_secret", str)
