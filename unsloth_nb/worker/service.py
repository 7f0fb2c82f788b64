"""The worker as a whole: the job, the token check, activity tracking and the way out.

Separate from the HTTP layer so the rules (who may ask, when the pod ends) read in
one place. The pod ends on ``POST /shutdown``, on the idle timeout, or on a fatal
error in ``main``; every one of those goes through :meth:`WorkerService.shutdown`.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from unsloth_nb.worker.artifacts import INLINE_HASH_BYTES, iter_artifacts
from unsloth_nb.worker.job import JobHost
from unsloth_nb.worker.keep import OutputKeeper
from unsloth_nb.worker.scrub import Redactor
from unsloth_nb.worker.selfterm import PodIdentity, terminate_until_gone

logger = logging.getLogger("unsloth_nb.worker")

#: Routes that only look: answering them never counts as a client being there.
PROBE_ROUTES = frozenset({"/health", "/job"})


class WorkerService:
    def __init__(
        self,
        token: str,
        work_dir: Path,
        redactor: Redactor,
        pod: PodIdentity,
        idle_timeout: float,
    ) -> None:
        self._token = token.encode("utf-8")
        self.redactor = redactor
        self.pod = pod
        self.idle_timeout = idle_timeout
        self.host = JobHost(work_dir, redactor)
        self.hashes = self.host.hashes
        self.keeper = OutputKeeper(self.host)  # finished outputs nobody collected are kept before the pod ends
        self.exit_code = 0
        self.stop_serving: Callable[[], None] = lambda: None
        self._activity_lock = threading.Lock()
        self._in_flight = 0
        self._last_activity = time.monotonic()
        self._shutdown_started = threading.Event()

    # ------------------------------------------------------------------ auth
    def authorized(self, header: str | None) -> bool:
        """Constant-time check of ``Authorization: Bearer <token>``."""
        scheme, _, presented = (header or "").strip().partition(" ")
        candidate = presented.strip().encode("utf-8") if scheme.lower() == "bearer" else b""
        return hmac.compare_digest(candidate, self._token)

    # ------------------------------------------------------------------ activity
    @staticmethod
    def is_activity(method: str, path: str) -> bool:
        """Whether a request keeps an idle pod alive: a client following or giving the job does, a probe does not.

        ``GET /health`` and ``GET /job`` are what reuse checks (``find_reusable_pod``) and
        readiness waits send; counting them let every new job add a full idle timeout of
        billing to an orphan nobody follows.
        """
        return not (method in ("GET", "HEAD") and path in PROBE_ROUTES)

    def request_started(self, activity: bool = True) -> None:
        if not activity:
            return
        with self._activity_lock:
            self._in_flight += 1
            self._last_activity = time.monotonic()

    def request_finished(self, activity: bool = True) -> None:
        if not activity:
            return
        with self._activity_lock:
            self._in_flight -= 1
            self._last_activity = time.monotonic()

    def idle_seconds(self) -> float:
        """How long no client has followed or given the job while no training runs (0 while busy); probes do not count."""
        with self._activity_lock:
            if self._in_flight or self.host.running:
                return 0.0
            since = self._last_activity
            if self.host.finished_at is not None:
                since = max(since, self.host.finished_at)
            return time.monotonic() - since

    def watch_idle(self, poll_s: float | None = None) -> None:
        """Run in a thread: end the pod once it has been idle for ``idle_timeout`` seconds.

        Finished outputs that no client collected are kept first (:mod:`.keep`); while
        they have nowhere to go, the pod waits for a collector up to ``runpod.keep_uncollected``.
        """
        poll = poll_s if poll_s is not None else min(5.0, max(self.idle_timeout / 4, 0.2))
        while not self._shutdown_started.wait(poll):
            idle = self.idle_seconds()
            if idle < self.idle_timeout:
                continue
            try:
                reason = self.keeper.before_ending(idle, self.idle_timeout)
            except Exception:  # a bug here must not leave the pod billing forever: end it, as before keeping existed
                logger.exception("keeping the finished outputs failed")
                reason = f"no client request for {idle:.0f} s while no job was running (keeping the outputs failed)"
            if reason is not None:
                self.shutdown(reason)
                return

    # ------------------------------------------------------------------ artifacts
    def list_artifacts(self, prefix: str, with_sha256: bool) -> list[dict[str, object]]:
        """Files with their sizes, and hashes when asked: ``null`` for one still being hashed (ask again)."""
        listing: list[dict[str, object]] = []
        budget = [INLINE_HASH_BYTES]
        for artifact in iter_artifacts(self.host.output_dir, prefix):
            entry: dict[str, object] = {"name": artifact.name, "bytes": artifact.bytes}
            if with_sha256:
                entry["sha256"] = self.hashes.listing_hash(artifact.path, budget)
            listing.append(entry)
        return listing

    # ------------------------------------------------------------------ the way out
    @property
    def shutting_down(self) -> bool:
        return self._shutdown_started.is_set()

    def shutdown(self, reason: str) -> bool:
        """Stop training, terminate this pod, stop serving; in a thread, so a request can answer first.

        Returns False when a shutdown is already under way.
        """
        if self._shutdown_started.is_set():
            return False
        self._shutdown_started.set()
        threading.Thread(target=self._shut_down, args=(reason,), name="unsloth-nb-shutdown", daemon=True).start()
        return True

    def _shut_down(self, reason: str) -> None:
        logger.info("shutting down: %s", reason)
        self.host.cancel_event.set()
        if self.host.log is not None:
            self.host.log.emit("log", level="info", message=f"worker shutting down: {reason}", source="worker")
        if self.pod.on_runpod:
            terminate_until_gone(self.pod, self._termination_failed)  # returns only once RunPod took the order
        self.stop_serving()

    def _termination_failed(self, attempt: int, retry_in: float) -> None:
        """Every failed round is an event, so a client that comes back (or a person reading the log) sees it."""
        message = (
            f"could not terminate pod {self.pod.pod_id} (attempt {attempt}): the RunPod API did not take the order; "
            f"retrying in {retry_in:.0f} s, for as long as this pod runs (it bills until it ends)"
        )
        logger.error(message)
        if self.host.log is not None:
            self.host.log.emit("log", level="error", message=message, source="worker")

    def close(self) -> None:
        self.host.close()
