"""Waiting on a job's state in tests, by reading its event log the way a view does."""

from __future__ import annotations

import time

from unsloth_nb.jobrun.job import Job


def wait_for_state(job: Job, state: str, timeout: float = 300.0) -> None:
    cursor = -1
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in job.log.wait(cursor, timeout=1.0):
            cursor = event.seq
            if event.kind == "status" and event.data.get("state") == state:
                return
        if job.done:
            break
    raise AssertionError(f"job {job.id} never reached {state}; it is {job.state}: {job.error}")
