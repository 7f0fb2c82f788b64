"""The checkpoint keeper against a pod's worker stand-in on 127.0.0.1: what it says when a copy does not finish.

The stand-in answers only what the keeper asks (``GET /artifacts``): 503 while the pod's
proxy hiccups, or a listing without the checkpoint's ``trainer_state.json``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from unsloth_nb.backends.worker_link.checkpoints import CheckpointKeeper
from unsloth_nb.testing.loopback_http import LoopbackHandler, LoopbackServer


class _Pod(LoopbackHandler):
    answer_status: ClassVar[int] = 503
    listing: ClassVar[list[dict[str, object]]] = []
    seen: ClassVar[threading.Event] = threading.Event()

    def do_GET(self) -> None:
        type(self).seen.set()
        if self.answer_status == 200:
            self.send_json(200, self.listing)
        else:
            self.send_json(self.answer_status, {"error": "proxy hiccup"}, {"Retry-After": "0"})


@pytest.fixture
def pod() -> Iterator[tuple[str, type[_Pod]]]:
    handler = type("Pod", (_Pod,), {"seen": threading.Event()})
    server = LoopbackServer(0, handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_a_copy_cut_short_by_the_end_of_the_job_is_not_reported_as_failed(
    tmp_path: Path, pod: tuple[str, type[_Pod]], caplog: pytest.LogCaptureFixture
) -> None:
    """Ctrl-C closes the keeper mid-copy; the job's own download supersedes it, so no 'copy failed' warning."""
    url, handler = pod
    said: list[str] = []
    keeper = CheckpointKeeper(tmp_path / "checkpoints", said.append)
    caplog.set_level(logging.INFO, logger="unsloth_nb")
    keeper.offer(url, "token", "checkpoint-12")
    assert handler.seen.wait(10), "the keeper never asked the pod"
    keeper.close()
    time.sleep(0.3)
    assert said == []
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and "copy failed" in r.getMessage()]


def test_a_copy_that_really_failed_is_still_reported(tmp_path: Path, pod: tuple[str, type[_Pod]]) -> None:
    url, handler = pod
    handler.answer_status = 200
    handler.listing = [{"name": "checkpoint-12/adapter_model.safetensors", "bytes": 3, "sha256": "0" * 64}]
    said: list[str] = []
    keeper = CheckpointKeeper(tmp_path / "checkpoints", said.append)
    try:
        keeper.offer(url, "token", "checkpoint-12")
        assert keeper.wait_idle(10)
    finally:
        keeper.close()
    assert len(said) == 1 and said[0].startswith("could not copy checkpoint-12 here (the pod lists no complete checkpoint-12)")
