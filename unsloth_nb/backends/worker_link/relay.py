"""Copying a remote worker's events into the job's log, so a remote job reads like a local one.

The worker on a pod keeps its own event log; the backend long-polls it with a
cursor and hands each answer to an :class:`EventRelay`, which re-emits the events
into the job's log, so the chart, the CLI printer and the job folder work exactly
as for a local job:

- remote ``status`` events become job state changes rather than copies;
- ``artifact``/``checkpoint`` paths are rewritten to where the files land here;
- steps trained again after a resume are not charted twice (each series keeps the
  highest step copied);
- every remote event received is first appended, as it came, to
  ``pods/<pod_id>.events.jsonl`` in the job folder, and only then copied: the record
  is the cursor a reattaching process continues from (:meth:`EventRelay.take_over`)
  and shows that nothing was lost on the way, so it must hold every event the log
  got, also when this process is killed between the two writes. (Copy first and a
  kill in between leaves an event in the log that the record lacks: once the pod is
  gone too, nothing can set that right, and the log holds an event no record
  accounts for.) Only the record's last event can be missing from the log; the
  process that takes over copies it when the log does not have it.

The relay owns that state and what the events told about the job (its last step
and loss, why the remote job ended, the newest checkpoint on the pod and on the
Hub, a dead worker's last log lines); the backend decides what to do with it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from unsloth_nb.jobrun.events import drop_torn_tail
from unsloth_nb.jobrun.lifecycle import COST, ENGINE_STATES, EVENT_KINDS, STATUS, TERMINAL_STATES
from unsloth_nb.worker.protocol import CRASH_LOG_MARKER

if TYPE_CHECKING:
    from unsloth_nb.backends.base import JobContext

#: Remote job states the engine reports that are also job states here.
_MIRRORED_STATES = ENGINE_STATES
REMOTE_END_STATES = TERMINAL_STATES
#: Remote event kinds copied into the job's log as they are (status becomes state changes; cost is counted here).
_COPIED_KINDS = frozenset(EVENT_KINDS) - {STATUS, COST}
#: Log sources that are this side's own words rather than the pod's.
_CLIENT_SOURCES = frozenset({"runpod", "planner", "controller"})


class EventRelay:
    """Re-emits one job's remote events into its log, across pods, resumes and a reattach.

    ``say`` writes this side's own log lines; ``on_checkpoint`` gets the artifact name
    of each checkpoint the pod saved to its disk, except the last one (that one comes
    with the adapter), so it can be copied here while the pod trains on.
    """

    def __init__(self, ctx: JobContext, say: Callable[..., None], on_checkpoint: Callable[[str], None]) -> None:
        self.ctx = ctx
        self._say = say
        self._on_checkpoint = on_checkpoint
        self.cursor = -1  # the last remote seq copied from the current pod's worker
        self.last_step = 0
        self.last_loss: float | None = None
        self.remote_reason: str | None = None
        self.remote_error: str | None = None
        self.remote_checkpoint: str | None = None  # newest checkpoint the pod reported, as an artifact name
        self.hub_checkpoint: str | None = None  # newest checkpoint the pod pushed to the Hub (checkpoint-N)
        self._total_steps: int | None = None
        self._crash_tail: str | None = None  # the dead worker's last log lines, as its successor reported them
        self._crash_when: str | None = None
        self._charted: dict[str, int] = {}  # series -> highest step copied: steps trained again are not charted twice
        self._copied_last: dict[str, dict[str, Any]] = {}  # kind -> the last pod event of that kind in the log
        self._mirror: IO[str] | None = None
        self._mirror_pod: str | None = None

    def receive(self, pod_id: str, events: Iterable[dict[str, Any]]) -> None:
        """Copy the events of one poll answer from ``pod_id``'s worker, in order, each once."""
        for event in events:
            seq = int(event["seq"])
            if seq <= self.cursor:
                continue  # already copied (a replayed answer)
            if seq != self.cursor + 1:
                self._say(f"events {self.cursor + 1}-{seq - 1} from the pod are missing", level="warning")
            self._note(pod_id, event)  # first: what the log gets, the record already holds
            self.cursor = seq
            self._copy(event)

    def from_start(self) -> None:
        """A worker that got the job afresh (a new pod) numbers its events from the start."""
        self.cursor = -1

    def take_over(self, pod_id: str) -> None:
        """Continue where the job's previous owner stopped copying ``pod_id``'s events (reattach).

        The owner may have died between recording an event and copying it: the record's
        last event is copied now unless the log's last pod event of its kind is that one
        (so a pod that is gone by now loses nothing it had sent either).
        """
        last = self._recorded_last(pod_id)
        self.cursor = -1 if last is None else int(last["seq"])
        self._copied_last = {
            e.kind: e.data for e in self.ctx.log.read() if not (e.kind == "log" and e.data.get("source") in _CLIENT_SOURCES)
        }
        for event in self.ctx.log.read(kinds={"metrics", "progress"}):
            self._chart(event.kind, event.data)
        if last is not None:
            self._copy(last, maybe_copied=True)

    def take_crash(self) -> tuple[str | None, str | None]:
        """The dead worker's last log lines and when it ended, as its successor reported them; forgotten once taken."""
        tail, when = self._crash_tail, self._crash_when
        self._crash_tail = self._crash_when = None
        return tail, when

    def close(self) -> None:
        """Close the current pod's record; the next event received opens its pod's record again."""
        if self._mirror is not None:
            self._mirror.close()
        self._mirror, self._mirror_pod = None, None

    def _copy(self, event: dict[str, Any], *, maybe_copied: bool = False) -> None:
        """Copy one remote event into the log; ``maybe_copied``: a dead owner's last, which the log may hold."""
        kind, data = str(event.get("kind")), dict(event.get("data") or {})
        if kind == "status":
            state = str(data.get("state") or "")
            if state in _MIRRORED_STATES:
                self.ctx.set_state(state)
            elif state in REMOTE_END_STATES:
                self.remote_reason = data.get("reason")
            return
        if kind not in _COPIED_KINDS:
            return
        if kind in ("metrics", "progress") and not self._chart(kind, data):
            return  # trained again after a resume: the chart has this step already
        on_hub = kind == "checkpoint" and bool(data.get("url"))
        if on_hub:
            self.hub_checkpoint = Path(str(data.get("path") or "")).name or self.hub_checkpoint
        elif kind == "checkpoint" and isinstance(data.get("path"), str):
            # A dead owner's checkpoint is not offered for copying: its pod may be gone, and the next one comes.
            self._checkpoint_saved(data["path"], data.get("step"), offer=not maybe_copied)
        # Pod paths become where the files land here; a Hub checkpoint keeps the pod's name (it is no file here).
        local_path = kind in ("artifact", "checkpoint") and isinstance(data.get("path"), str) and not on_hub
        if local_path and not Path(data["path"]).is_absolute():
            data["path"] = str(self.ctx.output_dir / data["path"])
        if kind == "metrics":
            self.last_step = int(data.get("step") or self.last_step)
            if data.get("loss") is not None:
                self.last_loss = float(data["loss"])
        if kind == "progress" and data.get("total_steps"):
            self._total_steps = int(data["total_steps"])
        if kind == "error":
            self.remote_error = str(data.get("message") or "")
        if kind == "log" and data.get("source") == "worker" and CRASH_LOG_MARKER in str(data.get("message") or ""):
            head, self._crash_tail = str(data["message"]).split(CRASH_LOG_MARKER, 1)
            self._crash_when = head.rstrip("; ").removeprefix("the worker process ended ")
        if maybe_copied and self._copied_last.get(kind) == data:
            return  # the previous owner copied it before it died
        try:
            self.ctx.emit(kind, **data)
        except ValueError:  # a newer worker's field: keep the message, drop the shape
            self.ctx.emit("log", level="info", message=f"{kind}: {data}", source="pod")

    def _chart(self, kind: str, data: dict[str, Any]) -> bool:
        """Whether a metrics/progress event adds a step to its series (and note it when it does)."""
        step = data.get("step")
        if not isinstance(step, int):
            return True
        series = "progress" if kind == "progress" else ("eval" if "eval_loss" in data and "loss" not in data else "train")
        if step <= self._charted.get(series, -1):
            return False
        self._charted[series] = step
        return True

    def _checkpoint_saved(self, name: str, step: Any, *, offer: bool = True) -> None:
        self.remote_checkpoint = name
        final = isinstance(step, int) and self._total_steps is not None and step >= self._total_steps
        if offer and not final:  # the last one comes with the adapter
            self._on_checkpoint(name)

    def _record_path(self, pod_id: str) -> Path:
        return self.ctx.folder.path / "pods" / f"{pod_id}.events.jsonl"

    def _note(self, pod_id: str, event: dict[str, Any]) -> None:
        """Append a received remote event, as it came, to the pod's record in the job folder."""
        if self._mirror is None or self._mirror_pod != pod_id:
            self.close()
            path = self._record_path(pod_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                drop_torn_tail(path)  # a line a killed owner left half-written would swallow the next one
            self._mirror, self._mirror_pod = path.open("a", encoding="utf-8"), pod_id
        self._mirror.write(json.dumps(event) + "\n")
        self._mirror.flush()

    def _recorded_last(self, pod_id: str) -> dict[str, Any] | None:
        """The last event in ``pod_id``'s record (the one with the highest seq), or None when there is none."""
        path = self._record_path(pod_id)
        last: dict[str, Any] | None = None
        if path.exists():
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    try:
                        event = json.loads(line)
                        seq = int(event["seq"])
                    except (ValueError, KeyError, TypeError):
                        break  # a torn last line: that event was not copied and is fetched again
                    if last is None or seq > int(last["seq"]):
                        last = event
        return last
