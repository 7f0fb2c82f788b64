"""Typed job events and the append-only log every view reads from.

A job's backend (in-kernel thread or RunPod pod) appends events; the chart, the
progress widgets, the CLI printer and the JSONL file all read the same log by
cursor. ``seq`` is dense from 0 per job, so a reader that remembers the last
``seq`` it saw and asks for ``after=seq`` gets no gaps and no duplicates, also
after a reconnect or a kernel restart (the log reloads from its JSONL file).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unsloth_nb.jobrun.lifecycle import EVENT_KINDS

#: The payload keys each kind may carry (checked on emit, so a typo in a backend
#: fails in its tests rather than silently missing from the chart).
PAYLOAD_KEYS: dict[str, frozenset[str]] = {
    "status": frozenset({"state", "previous", "reason", "placement"}),
    "metrics": frozenset(
        {"step", "loss", "learning_rate", "grad_norm", "epoch", "tokens_per_second", "eval_loss", "num_tokens", "memory_gb"}
    ),  # memory_gb: peak so far (reserved GPU memory, or the process's RAM on a CPU)
    "progress": frozenset({"step", "total_steps", "eta_seconds", "elapsed_seconds"}),
    # kept_at: where a pod kept outputs nobody collected; api_unreachable_s: how long RunPod's API gave no answer (0: back)
    "log": frozenset({"level", "message", "source", "kept_at", "api_unreachable_s"}),
    "checkpoint": frozenset({"step", "path", "url"}),  # url: the copy pushed to the Hub
    "artifact": frozenset({"name", "path", "bytes", "kind", "url"}),
    "cost": frozenset({"usd_so_far", "usd_per_hour", "gpu", "source"}),
    "error": frozenset({"message", "error_type", "hint", "log_tail"}),
    # The judge's progress (done/total) and result (evaluate/): win/tie/loss, rate, interval, consistency, cost;
    # also any judged set of answers: which phase, the scores (name -> mean), how many, by whom, cost, where kept.
    "evaluation": frozenset(
        {
            "phase",
            "scores",
            "count",
            "usd",
            "path",
            "samples",
            "message",
            "stage",
            "done",
            "total",
            "questions",
            "wins",
            "ties",
            "losses",
            "no_verdict",
            "not_judged",
            "win_rate",
            "ci_low",
            "ci_high",
            "consistency",
            "cost_usd",
            "judge",
            "error",
            "report",
        }
    ),
    "summary": frozenset(
        {
            "rows",
            "format",
            "skipped",
            "tokens",
            "longest_tokens",
            "eval_rows",
            "source",
            "model",
            "params",
            "device",
            "columns",
            "truncated_rows",
            "tokens_cut",
            "long_dropped",
            "sources",  # where remote rows came from, and a dataset mix's row counts
            # the end of training: what the run took and used
            "train_runtime",
            "global_step",
            "final_loss",
            "num_tokens",
            "peak_memory_gb",
            "memory",
        }
    ),
    # A phase's PhaseResult.to_json(): the named artifacts (paths relative to the output folder) and metrics.
    "result": frozenset({"phase", "artifacts", "metrics", "stopped", "stop_reason"}),
}
assert set(PAYLOAD_KEYS) == set(EVENT_KINDS), "every lifecycle event kind has its payload keys here"


@dataclass(frozen=True)
class Event:
    """One thing that happened to a job. ``data`` is small, JSON-safe and never holds a secret."""

    job_id: str
    seq: int
    time: float
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"job_id": self.job_id, "seq": self.seq, "time": self.time, "kind": self.kind, "data": self.data})

    @classmethod
    def from_json(cls, line: str) -> Event:
        raw = json.loads(line)
        return cls(raw["job_id"], int(raw["seq"]), float(raw["time"]), raw["kind"], dict(raw.get("data") or {}))

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


def check_payload(kind: str, data: dict[str, Any]) -> None:
    if kind not in PAYLOAD_KEYS:
        raise ValueError(f"unknown event kind {kind!r}; known: {', '.join(EVENT_KINDS)}")
    unknown = set(data) - PAYLOAD_KEYS[kind]
    if unknown:
        raise ValueError(f"{kind} event has unknown keys {sorted(unknown)}; allowed: {sorted(PAYLOAD_KEYS[kind])}")


Subscriber = Callable[[Event], None]

#: How long an emit waits for another thread that is delivering its event to the subscribers. Bounded,
#: because that thread may be inside a subscriber waiting for a lock the emitting thread holds.
DELIVERY_WAIT_S = 2.0

#: How long the delivery thread lets events gather before handing them on (see deliver_in_background).
BACKGROUND_DELAY_S = 0.05


class EventLog:
    """Append-only, thread-safe event list with cursor reads, waits and subscribers.

    Writers call :meth:`emit` (assigns the next ``seq``) or :meth:`append` (keeps the
    ``seq`` of an event produced elsewhere, e.g. on a pod, refusing gaps and
    duplicates). When ``path`` is set every event is also appended to that JSONL
    file and flushed, so a crash loses at most the line being written.

    Subscribers get every event once, in ``seq`` order, through one queue. Usually the
    writer's thread delivers (the event and any still queued before it) before
    ``emit`` returns. A thread inside :meth:`deliver_in_background` (the training
    thread) only queues: a delivery thread calls the subscribers (a view's redraw
    state, the chart) so their work and their locks stay off the training step.
    """

    def __init__(self, job_id: str, path: str | Path | None = None, *, read_only: bool = False) -> None:
        self.job_id = job_id
        self.path = Path(path) if path is not None else None
        self.read_only = read_only
        self._events: list[Event] = []
        self._cond = threading.Condition()
        self._subscribers: list[Subscriber] = []
        self._undelivered: deque[Event] = deque()  # stored, not yet handed to the subscribers (in seq order)
        self._delivered = 0  # how many events the subscribers have had (the first ``_delivered`` seqs)
        self._delivering = threading.RLock()  # one delivery at a time, so subscribers see seq order
        self._background: set[int] = set()  # idents of threads whose events the delivery thread hands on
        self._wake = threading.Event()
        self._deliverer: threading.Thread | None = None
        self._local = threading.local()  # .depth: how deep this thread is in delivering (a subscriber that emits)
        self._file = None
        if self.path is not None:
            if read_only:
                if self.path.exists():
                    self._events = list(read_events_file(self.path))
                    self._delivered = len(self._events)  # history: a subscriber gets it by replay, not delivery
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                self._events = list(read_events_file(self.path))
                self._delivered = len(self._events)
                drop_torn_tail(self.path)
            self._file = self.path.open("a", encoding="utf-8")

    # ------------------------------------------------------------------ writing
    def emit(self, kind: str, /, **data: Any) -> Event:
        """Record a new event from this process."""
        self._check_writable()
        check_payload(kind, data)
        with self._cond:
            event = Event(self.job_id, len(self._events), time.time(), kind, data)
            self._store(event)
        self._deliver(event.seq)
        return event

    def append(self, event: Event) -> bool:
        """Add an event that already has a ``seq`` (from a remote log).

        Returns False for one already held (a replay after reconnect); raises on a gap,
        because a gap means the reader's cursor logic is wrong.
        """
        self._check_writable()
        with self._cond:
            expected = len(self._events)
            if event.seq < expected:
                return False
            if event.seq > expected:
                raise ValueError(f"event gap: expected seq {expected}, got {event.seq}")
            if event.job_id != self.job_id:
                event = Event(self.job_id, event.seq, event.time, event.kind, event.data)
            self._store(event)
        self._deliver(event.seq)
        return True

    def _check_writable(self) -> None:
        if self.read_only:
            raise RuntimeError(f"the event log of job {self.job_id} is followed read-only; another process writes it")

    def refresh(self) -> int:
        """Take in events another process has appended to the file since the last read.

        For a job run by another process (a view or ``wait()`` after a kernel restart):
        events are read into memory and handed to subscribers, never written back.
        Returns how many were new.
        """
        if self.path is None or not self.path.exists():
            return 0
        fresh = [e for e in read_events_file(self.path) if e.seq > self.last_seq]
        added = 0
        for event in fresh:
            with self._cond:
                if event.seq != len(self._events):
                    break
                self._events.append(event)
                self._undelivered.append(event)
                self._cond.notify_all()
            self._deliver(event.seq)
            added += 1
        return added

    def _store(self, event: Event) -> None:
        self._events.append(event)
        self._undelivered.append(event)
        if self._file is not None:
            self._file.write(event.to_json() + "\n")
            self._file.flush()
        self._cond.notify_all()

    # ------------------------------------------------------------------ delivering to subscribers
    def _deliver(self, seq: int) -> None:
        """Hand queued events on: before returning, or (from a background-delivery thread) by the delivery thread."""
        if threading.get_ident() in self._background:
            self._wake.set()
        else:
            self._drain()
            if not getattr(self._local, "depth", 0):  # inside a subscriber, the event before ours is still being delivered
                self._wait_delivered(seq, DELIVERY_WAIT_S)

    def _wait_delivered(self, seq: int, timeout: float) -> None:
        """Until the subscribers have had ``seq`` (another thread may be delivering it), at most ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._delivered <= seq and (remaining := deadline - time.monotonic()) > 0:
                self._cond.wait(remaining)

    def _drain(self) -> None:
        """Deliver what is queued, unless another thread is delivering: that one takes these events too.

        Never waiting for the delivering thread matters: it may be inside a subscriber, waiting for a
        lock (a view's) that this thread holds. The deliverer looks at the queue again after letting
        go, so an event queued meanwhile is never stranded.
        """
        while True:
            if not self._delivering.acquire(blocking=False):
                return
            self._local.depth = getattr(self._local, "depth", 0) + 1
            try:
                while True:
                    with self._cond:
                        if not self._undelivered:
                            break
                        event = self._undelivered.popleft()
                    self._notify(event)
                    with self._cond:
                        self._delivered += 1
                        self._cond.notify_all()
            finally:
                self._local.depth -= 1
                self._delivering.release()
            with self._cond:
                if not self._undelivered:
                    return

    @contextlib.contextmanager
    def deliver_in_background(self) -> Iterator[None]:
        """While inside, this thread's events reach subscribers from a delivery thread; all are delivered on exit.

        For the training thread: an emit then costs the check, the file line and the lock, and
        not the subscribers' work (nor waits on their locks, which a view's redraw thread holds).
        """
        ident = threading.get_ident()
        with self._cond:
            self._background.add(ident)
            if self._deliverer is None:
                self._deliverer = threading.Thread(
                    target=self._deliver_until_idle, name=f"unsloth-nb-events-{self.job_id}", daemon=True
                )
                self._deliverer.start()
        try:
            yield
        finally:
            with self._cond:
                self._background.discard(ident)
                last = len(self._events) - 1
            self._wake.set()
            self._drain()
            self._wait_delivered(last, DELIVERY_WAIT_S)  # nothing this thread emitted is left for later

    def _deliver_until_idle(self) -> None:
        while True:
            self._wake.wait()
            # Not at once: right after an emit the training thread runs Python (callbacks) and would wait for the
            # GIL while subscribers run; a moment later it is back in torch kernels, which release it.
            time.sleep(BACKGROUND_DELAY_S)
            self._wake.clear()
            self._drain()
            with self._cond:
                if not self._background:
                    self._deliverer = None
                    return

    def _notify(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception as exc:  # a broken view must not stop training
                import logging

                logging.getLogger("unsloth_nb").warning("event subscriber %r failed: %s", subscriber, exc)

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self._events)

    @property
    def last_seq(self) -> int:
        return len(self._events) - 1

    def read(self, after: int = -1, kinds: set[str] | None = None, limit: int | None = None) -> list[Event]:
        """Events with ``seq > after`` (optionally only some kinds), oldest first."""
        with self._cond:
            chunk = self._events[after + 1 :]
        if kinds is not None:
            chunk = [e for e in chunk if e.kind in kinds]
        return chunk[:limit] if limit is not None else chunk

    def wait(self, after: int, timeout: float | None = None) -> list[Event]:
        """Block until an event with ``seq > after`` exists (or ``timeout``), then return them."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while len(self._events) - 1 <= after:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return []
                self._cond.wait(remaining)
            return self._events[after + 1 :]

    def follow(self, after: int = -1, poll: float = 0.5, until: Callable[[], bool] | None = None) -> Iterator[Event]:
        """Yield events as they arrive until ``until()`` is true and the log is drained."""
        cursor = after
        while True:
            batch = self.wait(cursor, timeout=poll)
            yield from batch
            if batch:
                cursor = batch[-1].seq
            elif until is not None and until():
                yield from self.read(cursor)
                return

    def subscribe(self, callback: Subscriber, replay: bool = True) -> Callable[[], None]:
        """Call ``callback`` for every new event (and, with ``replay``, every past one first).

        Returns a function that unsubscribes. Callbacks run on the writer's thread (or the
        delivery thread, see :meth:`deliver_in_background`), one event at a time in seq
        order, and must be quick; views throttle their own redraws.
        """
        with self._delivering:
            self._drain()  # what is queued goes to the subscribers already there; the newcomer replays it
            with self._cond:
                past = list(self._events) if replay else []
                self._subscribers.append(callback)
            for event in past:
                callback(event)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_events_file(path: str | Path) -> Iterator[Event]:
    """Events from a JSONL file; a torn last line (crash mid-write) is ignored."""
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                yield Event.from_json(line)
            except (json.JSONDecodeError, KeyError):
                return


def drop_torn_tail(path: Path) -> None:
    """Cut a half-written last line so that new events start on a line of their own."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)
