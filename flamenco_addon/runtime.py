"""The add-on's live state between redraws, fed by its helper process. No `bpy`, no threads.

Everything that waits on the network runs in the helper (service.py); this
module sends it requests and, from Blender's main thread only (a timer, a
modal operator, or a blocking loop in scripts), reads its answers within a
small time budget and keeps what they say in plain attributes. The shell
copies those into properties and redraws the panel when `changed` is set.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .background import Message, MsgCancelled, MsgDone, MsgError, MsgProgress
from .farms import Found
from .pipe import JSON, Helper, HelperGone

log = logging.getLogger(__name__)

# The panel counts as visible for this long after its last draw.
VISIBLE_FOR = 5.0
# Seconds between job list polls while the panel is visible.
JOBS_EVERY = 2.0
# Seconds before asking an unreachable coordinator for its job types again.
RETRY = 10.0
# Seconds between result syncs of the watched files' jobs.
SYNC_EVERY = 3.0
GONE = "The add-on's helper process stopped (see helper.log in the add-on's folder); try again"

Reply = Callable[[JSON], None]


@dataclass
class JobsView:
    """What the Jobs list shows, and of which farm."""

    url: str = ""  # the farm these rows came from
    jobs: list[dict[str, Any]] = field(default_factory=list)  # as GET /jobs lists them
    error: str = ""  # why there are no rows to trust
    fetched_at: float = 0.0  # monotonic time of the last good fetch
    origin: str = ""  # this file's jobs on that farm carry it (origins.origin_of)
    running: int | None = None  # the farm's queued and active jobs, anyone's; None: unknown


@dataclass(frozen=True)
class JobsQuery:
    """What the Jobs panel asks to see."""

    url: str = ""  # the farm; "" when none is chosen
    token: str = ""
    filters: tuple[tuple[str, str], ...] = ()  # GET /jobs filters: status, type, name
    blend: str = ""  # this .blend, absolute; "" when unsaved
    mine: bool = False  # only this file's jobs ("This file"), else every job ("All")


@dataclass
class LastResult:
    """The panel's one line about the last thing the artist asked for."""

    text: str = ""
    error: bool = False
    at: float = 0.0


@dataclass
class SubmitState:
    """The submission in flight; the modal operator (or a script's loop) watches it."""

    rid: int  # its request id in the helper
    pack_root: Path  # removed when it ends, whoever ends it
    progress: float = 0.0
    text: str = "Submitting..."
    final: Message | None = None  # set once: done, error or cancelled
    cancelling: bool = False  # the artist asked to stop it; the helper has not answered yet


@dataclass
class Runtime:
    """Everything the shell keeps alive while the add-on is enabled."""

    helper: Helper | None = None  # made at register, started at the first request
    replies: dict[int, Reply] = field(default_factory=dict)  # request id -> its handler
    progress: dict[int, Callable[[MsgProgress], None]] = field(default_factory=dict)
    changed: bool = True  # something the panel draws changed since the last redraw
    jobs: JobsView = field(default_factory=JobsView)
    jobs_query: JobsQuery = field(default_factory=JobsQuery)
    jobs_seen_at: float = 0.0  # monotonic time the Jobs panel last drew
    jobs_due: float = 0.0  # monotonic time of the next poll
    jobs_rid: int = 0  # the poll in flight, 0 when none
    job_types: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    job_types_error: str = ""
    types_busy: set[str] = field(default_factory=set)
    types_failed_at: dict[str, float] = field(default_factory=dict)
    busy: str = ""  # the farm action running now, "" when idle
    last_result: LastResult | None = None
    submit: SubmitState | None = None
    farms: list[Found] = field(default_factory=list)  # found on the network
    discovery: tuple[bool, tuple[str, ...] | None] | None = None  # what the helper browses
    discovery_error: str = ""
    sync_blends: set[str] = field(default_factory=set)  # normcase'd .blend paths watched
    sync_status: dict[int, str] = field(default_factory=dict)  # job id -> line
    sync_due: float = 0.0
    sync_rid: int = 0
    panel_seen_at: float = 0.0  # monotonic time the main panel last drew
    warnings: list[str] = field(default_factory=list)  # said above Submit
    warnings_due: float = 0.0

    # ------------------------------------------------------------ plumbing
    def request(
        self,
        kind: str,
        args: JSON,
        on_reply: Reply,
        on_progress: Callable[[MsgProgress], None] | None = None,
    ) -> int:
        """Send a request; `on_reply` gets its final message on the main thread."""
        if self.helper is None:
            raise HelperGone("the add-on is not registered")
        if self.helper.died:  # what it still owed us will never come
            self.dispatch(self.helper.read(budget=0.05))
            if self.helper.died:
                self.helper.stop()
                self._helper_gone()
        rid = self.helper.send(kind, **args)
        self.replies[rid] = on_reply
        if on_progress is not None:
            self.progress[rid] = on_progress
        return rid

    def pump(self, budget: float = 0.005) -> None:
        """Handle what the helper said since the last call; never blocks."""
        if self.helper is not None:
            self.dispatch(self.helper.read(budget))

    def dispatch(self, messages: list[JSON]) -> None:
        for msg in messages:
            self._one(msg)

    def _one(self, msg: JSON) -> None:
        self.changed = True
        if msg.get("gone"):
            self._helper_gone()
        elif msg.get("event") == "found":
            self.farms = [Found.from_json(f) for f in msg.get("farms", [])]
        elif "progress" in msg:
            on_progress = self.progress.get(int(msg["id"]))
            if on_progress is not None:
                on_progress(MsgProgress(**msg["progress"]))
        else:
            rid = int(msg["id"])
            self.progress.pop(rid, None)
            reply = self.replies.pop(rid, None)
            if reply is not None:
                reply(msg)

    def _helper_gone(self) -> None:
        """Every request in flight ends with an error; the next one starts a new helper."""
        log.warning("farm helper process ended")
        replies, self.replies, self.progress = self.replies, {}, {}
        for rid, reply in replies.items():
            reply({"id": rid, "error": GONE})
        self.discovery = None  # browse again in the new one

    def wait(self, until: Callable[[], bool]) -> None:
        """Blocking, for scripts and `blender -b`: handle messages until done."""
        if self.helper is not None:
            self.helper.wait(until, self.dispatch)

    # ------------------------------------------------------------ job list
    def want_jobs(
        self, url: str, token: str, filters: dict[str, str], *, blend: str = "", mine: bool = False
    ) -> None:
        """Called by the Jobs panel's draw(): cheap; the next tick polls."""
        self.jobs_seen_at = time.monotonic()
        query = JobsQuery(url, token, tuple(sorted(filters.items())), blend, mine)
        if query != self.jobs_query:
            old, self.jobs_query, self.jobs_due = self.jobs_query, query, 0.0
            if (url, blend, mine) != (old.url, old.blend, old.mine):
                # another farm, file or scope: the rows shown are not this list's
                self.jobs, self.changed = JobsView(url), True

    def refresh_jobs(self) -> None:
        self.jobs_due = 0.0

    def poll_jobs(self, now: float) -> None:
        query = self.jobs_query
        visible = now - self.jobs_seen_at < VISIBLE_FOR
        if not query.url or not visible or self.jobs_rid or now < self.jobs_due:
            return
        self.jobs_due = now + JOBS_EVERY
        url = query.url

        def got(msg: JSON) -> None:
            self.jobs_rid = 0
            if self.jobs_query != query:
                return  # the artist chose another farm, file or filter meanwhile
            if "ok" in msg:
                ok = msg["ok"]
                origin, running = ok.get("origin", ""), ok.get("running")
                self.jobs = JobsView(url, ok["jobs"], "", time.monotonic(), origin, running)
            else:  # stale rows would mislead ("active 25%" of a stopped farm)
                self.jobs = JobsView(url, [], msg.get("error", ""), self.jobs.fetched_at)

        args = {
            "url": url,
            "token": query.token,
            "filters": dict(query.filters),
            "blend": query.blend,
            "mine": query.mine,
        }
        self.jobs_rid = self.request("jobs", args, got)

    # ----------------------------------------------------------- job types
    def types_for(self, url: str, token: str) -> list[dict[str, Any]]:
        """The cached types; an unknown URL is asked for (again after RETRY s)."""
        recent = time.monotonic() - self.types_failed_at.get(url, -RETRY) < RETRY
        if url and url not in self.job_types and url not in self.types_busy and not recent:
            self.types_busy.add(url)

            def got(msg: JSON) -> None:
                self.types_busy.discard(url)
                if "ok" in msg:
                    self.job_types[url], self.job_types_error = msg["ok"]["types"], ""
                else:
                    self.job_types_error = msg.get("error", "")
                    self.types_failed_at[url] = time.monotonic()

            self.request("job_types", {"url": url, "token": token}, got)
        return self.job_types.get(url, [])

    # ------------------------------------------------------------- actions
    def run_action(self, what: str, kind: str, args: JSON) -> None:
        """A quick farm call from a button; its result goes to the result line."""
        self.busy, self.changed = what, True

        def got(msg: JSON) -> None:
            self.busy = ""
            self.last_result = result_of(msg)
            if kind == "farm_stop":  # its jobs are gone with it, not "active 25%"
                self.jobs = JobsView(self.jobs.url, [], "", 0.0)
            self.refresh_jobs()

        self.request(kind, args, got)

    # ------------------------------------------------------------- submit
    def start_submit(self, payload: JSON, pack_root: Path) -> SubmitState:
        def progress(msg: MsgProgress) -> None:
            if self.submit is not None and not self.submit.cancelling:
                self.submit.progress, self.submit.text = msg.fraction, msg.text

        def got(msg: JSON) -> None:
            if self.submit is not None:
                self.submit.final = final_message(msg)

        rid = self.request("submit", payload, got, progress)
        self.submit = SubmitState(rid, pack_root)
        return self.submit

    def cancel_submit(self) -> None:
        """Ask the helper to stop the submission; it ends as cancelled unless the
        job was created already (then the final message says so)."""
        state = self.submit
        if state is None or state.final is not None or state.cancelling or self.helper is None:
            return
        state.cancelling, state.text = True, "Cancelling..."
        self.changed = True
        self.request("cancel", {"target": state.rid}, lambda _msg: None)

    # ----------------------------------------------------- discovery, sync
    def discover(self, online: bool, interfaces: list[str] | None) -> None:
        wanted = (online, tuple(interfaces) if interfaces is not None else None)
        if wanted == self.discovery:
            return
        self.discovery = wanted

        def got(msg: JSON) -> None:
            self.discovery_error = (msg.get("ok") or {}).get("error") or msg.get("error", "")

        self.request("discover", {"online": online, "interfaces": interfaces}, got)

    def sync(self, now: float, records: Path, tokens: dict[str, str]) -> None:
        if not self.sync_blends or self.sync_rid or now < self.sync_due:
            return
        self.sync_due = now + SYNC_EVERY

        def got(msg: JSON) -> None:
            self.sync_rid = 0
            for job_id, line in (msg.get("ok") or {}).get("status", {}).items():
                self.sync_status[int(job_id)] = line

        args = {"records": str(records), "blends": sorted(self.sync_blends), "tokens": tokens}
        self.sync_rid = self.request("sync", args, got)

    def shutdown(self) -> None:
        if self.helper is not None:
            self.helper.stop()
        self.replies.clear()
        self.progress.clear()
        self.submit = None


def result_of(msg: JSON) -> LastResult:
    now = time.monotonic()
    if "ok" in msg:
        return LastResult(str(msg["ok"].get("text", "Done")), False, now)
    return LastResult(str(msg.get("error") or msg.get("cancelled") or "Failed"), True, now)


def final_message(msg: JSON) -> Message:
    if "ok" in msg:
        return MsgDone(msg["ok"]["job"], msg["ok"]["text"])
    if "cancelled" in msg:
        return MsgCancelled(msg["cancelled"])
    return MsgError(msg.get("error", "Submission failed"))


STATE = Runtime()
