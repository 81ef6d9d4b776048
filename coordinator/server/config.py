"""What a coordinator is started with: the farm's settings and the app's."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from coordinator.server.guard import ConnectionLimits


@dataclass(frozen=True)
class FarmConfig:
    data_dir: Path  # SQLite file, blobs, outputs, logs
    name: str  # shown in discovery and the dashboard
    token: str  # the farm token
    lease_seconds: float = 60.0  # a worker silent this long loses its task
    max_upload: int = 64 << 30  # bytes per uploaded file


@dataclass(frozen=True)
class AppConfig:
    farm: FarmConfig  # what the farm itself needs
    sweep_interval: float = 1.0  # seconds between lease/offline sweeps
    advertise: bool = False  # announce the farm by zeroconf
    zeroconf_interfaces: list[str] | None = None  # None: all interfaces
    port: int = 0  # the port we listen on, for the advertisement
    fingerprint: str = ""  # SHA-256 of the TLS certificate served ("AB:CD:..."); "": plain HTTP
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)  # before any token
