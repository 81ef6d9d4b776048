"""The farm: its services over one shared context, as one object.

The app keeps it under the `FARM` key, and a handler calls one service
method (`farm.jobs.submit(...)`, `farm.tasks.claim(...)`). The services live
in `coordinator.server.services`, one module each; what they share (store,
file store, hub, config and the steps every one takes the same way) is
`FarmContext`.
"""

from __future__ import annotations

from coordinator.server.config import FarmConfig
from coordinator.server.filestore import FileStore
from coordinator.server.hub import Hub
from coordinator.server.services.context import FarmContext
from coordinator.server.services.deliveries import DeliveryService
from coordinator.server.services.jobs import JobService
from coordinator.server.services.regenerate import Regenerator
from coordinator.server.services.sweeps import SweepService
from coordinator.server.services.tasks import TaskService
from coordinator.server.services.workers import WorkerService
from coordinator.server.store import Store


class Farm:
    def __init__(self, config: FarmConfig, store: Store, files: FileStore, hub: Hub) -> None:
        self.ctx = FarmContext(config, store, files, hub)
        self.workers = WorkerService(self.ctx)  # register, authenticate, a person's actions
        self.jobs = JobService(self.ctx)  # submit, read, a person's actions
        self.regenerator = Regenerator(self.ctx)  # a job's tasks compiled again
        self.tasks = TaskService(self.ctx)  # the worker protocol; a person's task actions
        self.deliveries = DeliveryService(self.ctx)  # outputs into their folders
        self.sweeps = SweepService(self.ctx)  # expired leases, silent workers

    @property
    def config(self) -> FarmConfig:
        return self.ctx.config

    @property
    def files(self) -> FileStore:
        return self.ctx.files
