"""No request does work that grows with the model: a multi-GB file is hashed off the request path.

RunPod's proxy answers 524 when a request takes over 100 s. A merged 16-bit model is
many GB, and hashing it inside ``GET /artifacts?sha256=1`` would outrun that. Here a
large sparse file (no disk space, full hashing cost) sits in the worker's output
folder, and our real :class:`WorkerClient` talks to the real worker with a request
timeout of a few seconds standing in for a shortened proxy limit: every request must
answer within it, and the listing still ends with the file's right sha256.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from unsloth_nb.backends.worker_link.client import WorkerClient
from unsloth_nb.testing.worker_process import WorkerProcess

#: Big enough that hashing takes several times the shortened limit on a busy 2-core machine.
SPARSE_BYTES = 3 << 30
PROXY_LIMIT_S = 3.0


#: sha256 of SPARSE_BYTES zero bytes (computed once, so the test does not hash 3 GiB itself).
SPARSE_SHA256 = "305b66a59d15b252092fbda9d09711230c429f351897cbd430e7b55a35fd3b97"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_multi_gb_file_is_listed_at_once_and_hashed_in_the_background(tmp_path: Path) -> None:
    work_dir = tmp_path / "w"
    merged = work_dir / "output" / "merged_16bit"
    merged.mkdir(parents=True)
    with (merged / "model.safetensors").open("wb") as handle:
        handle.truncate(SPARSE_BYTES)  # a hole: all zeros, no disk used
    (merged / "config.json").write_text('{"model_type": "llama"}')
    worker = WorkerProcess(work_dir).start()
    client = WorkerClient(f"http://127.0.0.1:{worker.port}", worker.token, request_timeout=PROXY_LIMIT_S, unreachable_after=0)
    try:
        started = time.monotonic()
        first = worker.request("GET", "/artifacts?prefix=merged_16bit&sha256=1", timeout=PROXY_LIMIT_S)
        assert time.monotonic() - started < PROXY_LIMIT_S
        listing = {entry["name"]: entry for entry in first.json()}
        assert listing["merged_16bit/config.json"]["sha256"] == hashlib.sha256(b'{"model_type": "llama"}').hexdigest()
        assert listing["merged_16bit/model.safetensors"] == {
            "name": "merged_16bit/model.safetensors",
            "bytes": SPARSE_BYTES,
            "sha256": None,  # being hashed: ask again
        }

        # The client asks again, each request well within the limit, until the hash is there.
        artifacts = {a.name: a for a in client.artifacts("merged_16bit", hash_wait=240)}
        assert artifacts["merged_16bit/model.safetensors"].sha256 == SPARSE_SHA256
        again = worker.request("GET", "/artifacts?prefix=merged_16bit&sha256=1", timeout=PROXY_LIMIT_S)
        assert {e["sha256"] for e in again.json()} == {a.sha256 for a in artifacts.values()}
    finally:
        client.close()
        worker.kill()
