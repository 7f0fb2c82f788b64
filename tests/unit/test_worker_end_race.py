"""A poll of the worker's events never reports the end of a job before its status event is readable.

The client stops following a pod when a poll says the job ended and its cursor has reached the
poll's ``last_seq``. If a poll could land after the worker published the end state but before it
appended the status event, the client stopped one event short: the fault matrix's sigterm row
once counted "1 event lost". Here a poll is made at exactly that moment, from inside the log's
emit of the status event, so the test does not depend on thread timing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from unsloth_nb.jobrun.events import EventLog
from unsloth_nb.worker.job import JobHost
from unsloth_nb.worker.protocol import REMOTE_END_STATES
from unsloth_nb.worker.scrub import Redactor


@pytest.mark.parametrize("end", ["cancelled", "succeeded", "failed"])
def test_a_poll_during_the_end_status_never_says_ended_short_of_it(tmp_path: Path, end: str) -> None:
    host = JobHost(tmp_path, Redactor([]))
    log = EventLog("job-1", tmp_path / "events.jsonl")
    host.log = log
    host._declared.set()
    host._set_state("training")
    log.emit("metrics", step=1, loss=1.0)
    polls: list[dict[str, Any]] = []
    emit = log.emit

    def emit_with_a_poll_first(kind: str, /, **data: Any) -> Any:
        if kind == "status":
            polls.append(host.events(log.last_seq, timeout=0))  # a client's poll, between "decided" and "written"
        return emit(kind, **data)

    log.emit = emit_with_a_poll_first  # type: ignore[method-assign]
    host._finish(end, "the end")

    status = log.read(kinds={"status"})[-1]
    assert status["state"] == end
    for poll in polls:  # the client's rule: stop when the job ended and the cursor reached last_seq
        stops_here = poll["state"] in REMOTE_END_STATES and not poll["more"]
        assert not stops_here or poll["last_seq"] >= status.seq, poll
    final = host.events(status.seq - 1, timeout=0)
    assert final["state"] == end and final["last_seq"] == status.seq
