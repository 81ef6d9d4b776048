"""The add-on's live state between redraws: threads and what they found. No `bpy` here.

Blender's properties cannot be written from threads, so every thread here
keeps its findings in plain attributes and sets a `changed` Event; one
`bpy.app.timers` function in the shell copies them into properties and
redraws the panel. Nothing here blocks the UI.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from coordinator.client.http import FarmClient, FarmClientError

from .background import Channel

log = logging.getLogger(__name__)

# The panel counts as visible for this long after its last draw.
VISIBLE_FOR = 5.0
# Seconds before asking an unreachable coordinator for its job types again.
RETRY = 10.0


@dataclass
class JobsView:
    """What the Jobs list shows; filled by JobsPoller."""

    jobs: list[dict[str, Any]] = field(default_factory=list)  # as GET /jobs lists them
    error: str = ""  # why the list is stale
    fetched_at: float = 0.0  # monotonic time of the last good fetch


class JobsPoller:
    """Polls the coordinator's job list while the panel is visible."""

    def __init__(self, interval: float = 2.0) -> None:
        self.interval = interval
        self.view = JobsView()
        self.changed = threading.Event()
        self.seen_at = 0.0  # monotonic time the panel last drew
        self.query: tuple[str, str, dict[str, str]] = ("", "", {})  # url, token, filters
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def want(self, url: str, token: str, filters: dict[str, str]) -> None:
        """Called by the panel's draw(): cheap, starts polling if needed."""
        self.seen_at = time.monotonic()
        query = (url, token, dict(filters))
        if query != self.query:
            self.query = query
            self._wake.set()
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="farm-jobs", daemon=True)
            self._thread.start()

    def refresh(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if time.monotonic() - self.seen_at < VISIBLE_FOR and self.query[0]:
                self._fetch()
            self._wake.wait(self.interval)
            self._wake.clear()

    def _fetch(self) -> None:
        url, token, filters = self.query
        client = FarmClient(url, token=token or None, timeout=5.0)
        try:
            jobs = client.jobs(limit=100, **filters)["jobs"]
            self.view = JobsView(jobs, "", time.monotonic())
        except FarmClientError as ex:
            self.view = JobsView(self.view.jobs, ex.message, self.view.fetched_at)
        self.changed.set()


class JobTypes:
    """The coordinator's job types and their settings schemas, fetched once per URL."""

    def __init__(self) -> None:
        self.by_url: dict[str, list[dict[str, Any]]] = {}
        self.error = ""
        self.changed = threading.Event()
        self._busy: set[str] = set()
        self.failed_at: dict[str, float] = {}  # url -> monotonic time of the last failure

    def get(self, url: str, token: str) -> list[dict[str, Any]]:
        """The cached types; an unknown URL is fetched in a thread (again after RETRY s)."""
        recent = time.monotonic() - self.failed_at.get(url, -RETRY) < RETRY
        if url and url not in self.by_url and url not in self._busy and not recent:
            self._busy.add(url)
            threading.Thread(
                target=self._fetch, args=(url, token), name="farm-job-types", daemon=True
            ).start()
        return self.by_url.get(url, [])

    def _fetch(self, url: str, token: str) -> None:
        try:
            self.by_url[url] = FarmClient(url, token=token or None, timeout=5.0).job_types()
            self.error = ""
        except FarmClientError as ex:
            self.error = ex.message
            self.failed_at[url] = time.monotonic()
        finally:
            self._busy.discard(url)
            self.changed.set()


@dataclass
class Notice:
    """One line the panel shows about the last background action."""

    text: str = ""
    error: bool = False
    at: float = 0.0


class Actions:
    """Quick farm calls (job actions, start/stop) run off the UI thread."""

    def __init__(self) -> None:
        self.notice = Notice()
        self.changed = threading.Event()
        self.busy = ""  # what runs now, "" when idle

    def run(self, what: str, call: Callable[[], str], describe: Callable[[Exception], str]) -> None:
        self.busy = what
        self.changed.set()

        def body() -> None:
            try:
                self.notice = Notice(call(), False, time.monotonic())
            except Exception as ex:
                self.notice = Notice(describe(ex), True, time.monotonic())
            finally:
                self.busy = ""
                self.changed.set()

        threading.Thread(target=body, name="farm-action", daemon=True).start()


@dataclass
class Runtime:
    """Everything the shell keeps alive while the add-on is enabled."""

    jobs: JobsPoller = field(default_factory=JobsPoller)
    job_types: JobTypes = field(default_factory=JobTypes)
    actions: Actions = field(default_factory=Actions)
    submit: Channel | None = None  # the running submission, if any
    finder: Any = None  # finder.Finder, when zeroconf is available
    syncer: Any = None  # sync.Syncer, created at register

    def any_changed(self) -> bool:
        events = [self.jobs.changed, self.job_types.changed, self.actions.changed]
        if self.finder is not None:
            events.append(self.finder.changed)
        hit = any(e.is_set() for e in events)
        for e in events:
            e.clear()
        return hit

    def shutdown(self) -> None:
        self.jobs.stop()
        if self.finder is not None:
            self.finder.stop()
        if self.syncer is not None:
            self.syncer.stop()
        if self.submit is not None:
            self.submit.cancel.set()


STATE = Runtime()
