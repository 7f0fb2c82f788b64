"""Finished work outlives the pod: outputs nobody collected are kept before the pod ends itself.

A job can finish while no client follows it (the kernel died, the laptop slept). The
pod then ends itself on its idle timeout, and before this module the adapter went with
it. Now, when the idle timeout comes and the job's outputs were never collected
(``POST /job/collected``, which the client sends once its download is verified), the
worker keeps them first, in the place a user would look and that costs least:

1. a network volume (``runpod.volume_id``): the work folder is on it already, so the
   outputs stay where they are and ``finished.json`` records it; nothing is copied;
2. the job's private Hub checkpoint repo (``hub.repo_id`` and ``HF_TOKEN`` came with
   the job): ``finished/`` with the adapter and every other output but checkpoints,
   the event log and ``result.json``, in one commit; ``load_job`` fetches it from there;
3. nowhere: the pod waits ``runpod.keep_uncollected`` seconds more (an hour by
   default; the plan shows what that costs) for ``load_job`` or ``runpod cleanup``
   to collect them, then ends itself and says, in its last event, that they are lost.

Keeping the pod stopped rather than terminated was weighed and not chosen: a stopped
pod still bills its disk, its outputs can only be read by starting it again (on a
GPU that may no longer be free), and nothing ends it unless a person does.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unsloth_nb.worker.job import JobHost

logger = logging.getLogger("unsloth_nb.worker")

#: The end states whose outputs are worth keeping (a cancelled job saved its adapter too).
KEEPABLE_STATES = frozenset({"succeeded", "cancelled"})
#: Written in the work folder once the outputs were kept (or given up): where, and when.
FINISHED_MARKER = "finished.json"
#: Between two failed pushes to the Hub.
RETRY_PUSH_S = 60.0


class OutputKeeper:
    """Decides, when the idle timeout comes, whether the pod may end now; keeps the outputs first."""

    def __init__(self, host: JobHost) -> None:
        self.host = host
        self.collected = False
        self.kept_at: str | None = None
        self._warned = False
        self._last_try = float("-inf")

    # ------------------------------------------------------------------ what the client says
    def mark_collected(self) -> dict[str, Any]:
        """The client downloaded and verified the outputs: from now on the pod ends on its plain idle timeout."""
        self.collected = True
        return {"collected": True}

    def describe(self) -> dict[str, Any]:
        return {"collected": self.collected, "kept_at": self.kept_at}

    # ------------------------------------------------------------------ the idle timeout
    def uncollected(self) -> bool:
        """Finished outputs that no client took and that are kept nowhere yet."""
        host = self.host
        return (
            not self.collected
            and self.kept_at is None
            and host.state in KEEPABLE_STATES
            and (host.output_dir / "adapter").is_dir()
        )

    def before_ending(self, idle: float, idle_timeout: float) -> str | None:
        """Why the pod may end now, or None while it must wait (outputs to keep and nowhere yet)."""
        plain = f"no client request for {idle:.0f} s while no job was running"
        if not self.uncollected():
            return plain
        settings = self._settings()
        grace = float(settings.get("keep_uncollected") or 0.0)
        out_of_time = idle >= idle_timeout + grace
        if settings.get("volume_id"):
            where = self._record(f"network volume {settings['volume_id']}, folder {self.host.output_dir}")
            return f"{plain}; the finished outputs stay on {where}"
        repo = settings.get("repo_id")
        if repo and os.environ.get("HF_TOKEN"):
            if time.monotonic() - self._last_try >= RETRY_PUSH_S or out_of_time:
                self._last_try = time.monotonic()
                url = self._push_to_hub(str(repo))
                if url is not None:
                    return f"{plain}; the finished outputs were kept at {url}"
        elif not self._warned:
            self._warned = True
            self._say(
                "warning",
                f"the job finished and no client collected its outputs; with no network volume and no Hub repo to keep "
                f"them in, this pod waits up to {grace:.0f} s more (runpod.keep_uncollected) for `load_job` or "
                "`unsloth-nb runpod cleanup` to collect them",
            )
        if not out_of_time:
            return None
        self._say(
            "error",
            f"nobody collected the finished outputs within runpod.keep_uncollected ({grace:.0f} s) after the idle timeout "
            "and they could be kept nowhere; they end with this pod",
        )
        self._record(None)
        return f"{plain}; its uncollected outputs were waited for {grace:.0f} s and are lost"

    # ------------------------------------------------------------------ keeping
    def _push_to_hub(self, repo_id: str) -> str | None:
        from unsloth_nb.errors import UnslothNbError
        from unsloth_nb.hub import kept_outputs_repo, push_finished

        target = kept_outputs_repo(repo_id)
        self._say("info", f"the job finished and no client collected its outputs; keeping them in the private repo {target}")
        staging = self.host.work_dir / "finished-staging"
        try:
            self._stage(staging)
            url = push_finished(staging, target)
        except (UnslothNbError, OSError) as exc:
            self._say("warning", f"could not keep the finished outputs in {target}: {exc}; trying again later")
            return None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self._record(url)

    def _stage(self, staging: Path) -> None:
        """Links to every output but checkpoints, a copy of the event log, and result.json (what the client needs)."""
        host = self.host
        shutil.rmtree(staging, ignore_errors=True)
        for path in sorted(host.output_dir.rglob("*")):
            relative = path.relative_to(host.output_dir)
            if not path.is_file() or relative.parts[0] == "checkpoints":
                continue
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
        shutil.copy2(host.events_path, staging / "events.jsonl")
        spec = host.spec
        result = {
            "job_id": spec.job_id if spec else None,
            "state": host.state,
            "last_seq": host.log.last_seq if host.log else -1,
            "kept": time.time(),
        }
        (staging / "result.json").write_text(json.dumps(result), encoding="utf-8")

    def _record(self, where: str | None) -> str | None:
        """Say where the outputs are (None: nowhere) in an event and in the work folder."""
        self.kept_at = where
        if where is not None:
            self._say("info", f"finished outputs kept at {where}", kept_at=where)
        marker = {"kept_at": where, "state": self.host.state, "time": time.time()}
        try:
            (self.host.work_dir / FINISHED_MARKER).write_text(json.dumps(marker), encoding="utf-8")
        except OSError:
            logger.warning("could not write %s", FINISHED_MARKER)
        return where

    def _settings(self) -> dict[str, Any]:
        """The few config values this needs, from the declared job (plain dict reads: no config parsing here)."""
        spec = self.host.spec
        config = spec.config if spec else {}
        runpod, hub = config.get("runpod") or {}, config.get("hub") or {}
        return {
            "keep_uncollected": runpod.get("keep_uncollected", 3600.0),
            "volume_id": runpod.get("volume_id"),
            "repo_id": hub.get("repo_id"),
        }

    def _say(self, level: str, message: str, **extra: Any) -> None:
        getattr(logger, "warning" if level == "warning" else "error" if level == "error" else "info")(message)
        self.host._emit("log", level=level, message=message, source="worker", **extra)
