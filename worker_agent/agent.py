"""The worker agent's loop: find the coordinator, register, pull tasks, run them.

The loop is `Agent.run` and `Agent._serve`; one task is a TaskRun
(task_run.py) doing one of the kinds in kinds.py. Tests end the loop with
`burst` (leave when the farm offers no work) or `max_tasks`.

Shutdown: the first SIGINT/SIGTERM lets the current task finish, then the
agent signs off and exits; a second one stops the render at once and hands
the task back to the farm.
"""

from __future__ import annotations

import logging
import platform
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coordinator.client.http import (
    AuthError,
    FarmClient,
    FarmClientError,
    PlainHttpRefused,
    Unreachable,
)
from coordinator.core.protocol import Assignment
from worker_agent.blender import build_serve_command
from worker_agent.cache import BlobCache
from worker_agent.credentials import FILE_NAME, load_credentials, save_credentials
from worker_agent.kinds import KINDS
from worker_agent.prefetch import Prefetcher, PrefetchLimits
from worker_agent.probe import BlenderInfo
from worker_agent.schedule import WorkHours
from worker_agent.task_run import Kind, TaskRun
from worker_agent.warm import BlenderSlot, WarmLimits

if TYPE_CHECKING:
    from coordinator.client.browser import FoundCoordinator

log = logging.getLogger(__name__)

NEEDS_TOKEN = "error: this worker needs the farm token to register: pass --token or set FARM_TOKEN"
# Without a token, how long farms it has no saved credentials for may be all it
# finds before it gives up (the real farm may be starting; an impostor is ignored).
NO_TOKEN_WAIT = 60.0
REST_CHECK = 30.0  # seconds between looks at the clock outside working hours


@dataclass
class AgentConfig:
    coordinator: str | None  # URL; None = find it by zeroconf
    token: str | None  # the farm token, to register
    name: str  # how the farm shows this worker
    blender: BlenderInfo  # the Blender (or bpy Python) that renders
    cache_dir: Path  # downloaded files, work folders, credentials
    devices: list[str] = field(default_factory=list)  # render devices found, for the farm
    tags: list[str] = field(default_factory=list)  # its pools, given when it registers
    capabilities: dict[str, Any] = field(default_factory=dict)  # engines, memory, OS
    device: str | None = None  # Cycles device to render with; None = the file's
    threads: int | None = None  # render threads; None = all
    allow_scripts: bool = False  # let .blend files run their Python scripts
    zeroconf_interfaces: list[str] | None = None  # where to look for the coordinator
    farm_name: str | None = None  # only join the farm announced under this name
    poll_wait: float = 20.0  # seconds per task long-poll
    max_tasks: int | None = None  # stop after this many tasks (tests, benchmarks)
    burst: bool = False  # stop when one long-poll finds no work
    retry_seconds: float = 2.0  # pause before looking for the coordinator again
    report_seconds: float = 1.0  # how often log text and progress go to the coordinator
    warm: WarmLimits = field(default_factory=WarmLimits)  # when the warm Blender is replaced
    persistent_data: bool = False  # Cycles keeps render data between a warm Blender's tasks
    work_hours: WorkHours | None = None  # when it takes new tasks; None = at any hour
    # fetch the next job's files while a task renders (prefetch.py); None = never
    prefetch: PrefetchLimits | None = field(default_factory=PrefetchLimits)


class Agent:
    def __init__(self, config: AgentConfig, *, kinds: dict[str, Kind] | None = None) -> None:
        self.config = config
        self.kinds = KINDS if kinds is None else kinds  # task kind -> what does it
        self.cache = BlobCache(config.cache_dir)
        self.stopping = threading.Event()  # finish the current task, then leave
        self.aborting = threading.Event()  # stop the current task now
        self.tasks_done = 0
        self.current: TaskRun | None = None  # the task being run, for a signal handler
        # since when discovery (without a token) finds only farms it cannot join
        self._unusable_since: float | None = None
        # The Blender kept open between a job's tasks, and an empty one on standby.
        self.blender = BlenderSlot(config.warm, self._standby_command)
        self._client: FarmClient | None = None  # once registered
        self.clock: Callable[[], datetime] = datetime.now  # local time, for work_hours
        self.resting = False  # outside its working hours now
        self.prefetcher = (
            None if config.prefetch is None else Prefetcher(self.cache, config.prefetch)
        )

    # -------------------------------------------------------------- the loop
    def run(self) -> int:
        """Serve until told to stop (or burst/max_tasks says so); the exit code."""
        try:
            while not self.stopping.is_set():
                try:
                    client = self._connect()
                    if client is not None:
                        self._serve(client)
                    break
                except Unreachable as ex:
                    log.warning("lost the coordinator (%s); looking for it again", ex.message)
                    self.stopping.wait(self.config.retry_seconds)
        finally:
            self.blender.close()
            if self.prefetcher is not None:
                self.prefetcher.close()
        return 0

    def _standby_command(self) -> list[str]:
        config = self.config
        return build_serve_command(
            config.blender, blend_path=None, allow_scripts=config.allow_scripts
        )

    @property
    def warm_job(self) -> int | None:
        """The job whose scene this worker's Blender holds, for the scheduler."""
        served = self.blender.served
        if served is None or served.key is None or not served.alive():
            return None
        return served.key.job_id

    def _serve(self, client: FarmClient) -> None:
        self._client = client
        chained: Assignment | None = None  # handed out with the last completion
        while not self.stopping.is_set() and not self._had_enough():
            if chained is None and self._rest(client):
                client = self._client or client  # registered again, if it had to
                continue
            if chained is None or self.warm_job != chained.job_id:
                self.blender.boot_standby(self.config.cache_dir)
            try:
                assignment = chained or client.next_task(
                    wait=self.config.poll_wait, warm_job=self.warm_job
                )
            except AuthError:
                log.warning("the coordinator no longer knows this worker; registering again")
                client = self._client = self._register(client, fresh=True)
                continue
            if assignment is None and self.config.burst:
                log.info("no work left; leaving (burst)")
                break
            if assignment is not None:
                chained = self._run_task(client, assignment)
                self.tasks_done += 1
        self.sign_off(client)

    def _rest(self, client: FarmClient) -> bool:
        """Outside the working hours: tell the farm (it shows the worker resting until
        the hours begin; said again each time, which keeps it from being thought gone),
        wait a while (no task asked for) and say True."""
        hours = self.config.work_hours
        now = self.clock()
        if hours is None or hours.working(now):
            if self.resting:
                log.info("working hours (%s) began: taking tasks again", hours and hours.describe())
                self.resting = False
            return False
        if not self.resting:
            self.resting = True
            log.info(
                "outside working hours (%s): no new tasks until %s",
                hours.describe(),
                hours.next_start(now).strftime("%H:%M"),
            )
            self.blender.close()  # the machine is the artist's again
        self._tell_resting(client, hours.next_start(now).timestamp())
        left = (hours.next_start(now) - now).total_seconds()
        self.stopping.wait(max(0.2, min(REST_CHECK, left)))
        return True

    def _tell_resting(self, client: FarmClient, until: float) -> None:
        try:
            client.rest(until)
        except AuthError:
            log.warning("the coordinator no longer knows this worker; registering again")
            self._client = self._register(client, fresh=True)
            self._client.rest(until)
        except Unreachable:
            raise
        except FarmClientError as ex:  # a coordinator older than resting: shown offline
            log.debug("could not say it rests: %s", ex.message)

    def _had_enough(self) -> bool:
        return self.config.max_tasks is not None and self.tasks_done >= self.config.max_tasks

    def wants_more(self) -> bool:
        """Whether to ask for the next task together with this completion."""
        limit = self.config.max_tasks
        hours = self.config.work_hours
        if hours is not None and not hours.working(self.clock()):
            return False  # the hours ended: finish this task, ask for no next one
        return not self.stopping.is_set() and (limit is None or self.tasks_done + 1 < limit)

    def shutdown(self, *, now: bool) -> None:
        """Called from a signal handler: finish (now=False) or abort (now=True)."""
        self.stopping.set()
        if now:
            self.aborting.set()
            current = self.current
            if current is not None:
                current.stop("the worker is shutting down")

    def _run_task(self, client: FarmClient, assignment: Assignment) -> Assignment | None:
        """Run one task; returns the next one when the coordinator chained it."""
        run = TaskRun(self, client, assignment)
        self.current = run  # from here a first signal lets the task finish
        log.info(
            "task %d: %s (job %d %r, attempt %d)",
            assignment.task_id,
            assignment.kind,
            assignment.job_id,
            assignment.job_name,
            assignment.attempt,
        )
        if self.prefetcher is not None and assignment.files:
            self.prefetcher.task_started(client, assignment.job_id, assignment.files)
        try:
            run.execute(self.kinds.get(assignment.kind))
        finally:
            self.current = None
        return run.next_assignment

    # ------------------------------------------------------ coordinator link
    def _connect(self) -> FarmClient | None:
        """Find the coordinator (waiting for one to appear) and register with it."""
        announced = False
        explicit = self.config.coordinator
        self._unusable_since = None
        while not self.stopping.is_set():
            for farm in (
                [FarmClient(explicit, token=self.config.token)] if explicit else self._discover()
            ):
                try:
                    farm.health()
                    return self._register(farm, fresh=False)
                except Unreachable:
                    pass
                except (AuthError, PlainHttpRefused) as ex:
                    if explicit:
                        raise SystemExit(
                            f"error: {farm.url} refused this worker: {ex.message}"
                        ) from ex
                    log.warning("not using the farm at %s: %s", farm.url, ex.message)
            if not announced:
                log.info("waiting for a coordinator at %s ...", explicit or "the LAN (zeroconf)")
                announced = True
            self.stopping.wait(self.config.retry_seconds)
        return None

    def _discover(self) -> list[FarmClient]:
        """Clients for the farms announced on the LAN (only --farm-name's, when given)
        that proved they know the farm token; nothing secret goes to the others.
        Without a token (a worker registered before), every farm over TLS is tried,
        and the worker's secret is sent only after that farm proved it knows it."""
        from coordinator.client import choosing
        from coordinator.client.browser import find_coordinators

        config = self.config
        interfaces, name = config.zeroconf_interfaces, config.farm_name
        # A moment more after the first answer, so that it is not the only one asked.
        found = find_coordinators(
            timeout=3.0, interfaces=interfaces, first=True, settle=1.0, name=name
        )
        found = list({f.service_name: f for f in found if f.compatible}.values())
        for farm in found:
            log.info("found coordinator %r at %s", farm.name, farm.url)
        if not config.token:
            return self._with_saved_credentials([f for f in found if f.can_prove()])
        good, _bad = choosing.proven(found, config.token)
        for candidate in good:
            log.info(
                "using farm %r at %s: it proved it knows the farm token (certificate %s)",
                candidate.farm.name,
                candidate.farm.url,
                candidate.fingerprint,
            )
        return [FarmClient(c.farm.url, token=config.token, plain_http=False) for c in good]

    def _with_saved_credentials(self, found: list[FoundCoordinator]) -> list[FarmClient]:
        """Without a token, only the farms this worker registered with can be joined:
        any other (an impostor, or a farm it never joined) is skipped, and browsing
        goes on. After NO_TOKEN_WAIT seconds of finding only such farms, it says
        it needs the token and exits."""
        path = self.config.cache_dir / FILE_NAME
        usable = [f for f in found if load_credentials(path, f.url) is not None]
        for farm in found:
            if farm not in usable:
                log.info(
                    "skipping farm %r at %s: this worker has no saved credentials for it"
                    " and no farm token",
                    farm.name,
                    farm.url,
                )
        if usable or not found:
            self._unusable_since = None
        else:
            now = time.monotonic()
            if self._unusable_since is None:
                self._unusable_since = now
            elif now - self._unusable_since > NO_TOKEN_WAIT:
                raise SystemExit(NEEDS_TOKEN)
        return [FarmClient(f.url, plain_http=False) for f in usable]

    def _register(self, farm: FarmClient, *, fresh: bool) -> FarmClient:
        """A client that acts as this worker: with the saved secret, else a new one."""
        path = self.config.cache_dir / FILE_NAME
        creds = None if fresh else load_credentials(path, farm.url)
        if creds is None:
            if not self.config.token:
                raise SystemExit(NEEDS_TOKEN)
            info = self.config.blender
            creds = farm.with_token(self.config.token).register_worker(
                name=self.config.name,
                host=socket.gethostname(),
                blender_version=info.version,
                devices=self.config.devices,
                tags=self.config.tags,
                capabilities=self.config.capabilities,
            )
            save_credentials(path, farm.url, creds)
            log.info(
                "registered with %s as %r (Blender %s)", farm.url, self.config.name, info.version
            )
            return farm.with_token(creds.secret)
        if self.config.tags and self.config.token:  # --tag given again: it wins
            try:
                farm.with_token(self.config.token).set_worker_tags(
                    creds.worker_id, self.config.tags
                )
            except FarmClientError as ex:
                log.warning("could not set this worker's tags: %s", ex)
        return self._report(farm, farm.with_token(creds.secret))

    def _report(self, farm: FarmClient, client: FarmClient) -> FarmClient:
        """Tell the farm what this worker can do now (its Blender may be new since it
        registered); a farm that no longer knows it gets a fresh registration."""
        config = self.config
        try:
            client.report_worker(
                {
                    "blender_version": config.blender.version,
                    "devices": config.devices,
                    "capabilities": config.capabilities,
                }
            )
        except AuthError:
            return self._register(farm, fresh=True)
        except Unreachable:
            raise
        except FarmClientError as ex:  # a coordinator from before reports
            log.info("could not report what this worker can do: %s", ex.message)
        return client

    def leave(self) -> None:
        """Interrupted outside a task (or between claiming and starting one): hand
        back whatever the farm thinks this worker holds, and say goodbye."""
        if self._client is not None:
            self.sign_off(self._client)

    def sign_off(self, client: FarmClient) -> None:
        try:
            client.sign_off()
        except FarmClientError as ex:
            log.info("could not sign off: %s", ex.message)


def default_name() -> str:
    return platform.node() or "worker"
