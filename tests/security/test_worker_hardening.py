"""The pod worker against a hostile client: what tests/integration/test_worker.py does not already try.

That file covers the token on every route, the 1 MiB / 8 MiB body limits, ``..`` and
encoded traversal, a symlinked file that points outside, and a failed job's error with no
secret. Here: bodies with no length (chunked) and oversized bodies on the small routes, the
token offered anywhere but the Authorization header, a symlinked *folder* and an absolute
symlink inside the output, a job id that tries to leave the work folder, and every way an
answer could echo the token or the pod's environment back (error messages that quote the
request, http.server's own error pages, TRACE).

The worker runs as ``python -m unsloth_nb.worker`` on 127.0.0.1, as on a pod.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from unsloth_nb.testing.worker_process import Answer, WorkerProcess
from unsloth_nb.worker.protocol import MAX_JSON_BYTES

#: Values the pod's environment holds besides the job token (joined, so no token-shaped literal is in the source).
POD_SECRETS = {
    "HF_TOKEN": "hf_" + "FAKEfake" + "WorkerHardening" + "0123456789",
    "OPENAI_API_KEY": "sk-" + "FAKE" + "WorkerHardeningOpenai" + "0123456789",
    "ANTHROPIC_API_KEY": "sk-" + "ant-" + "FAKE-worker-hardening-" + "0123456789",
}


class Worker(WorkerProcess):
    """The worker subprocess (see :class:`WorkerProcess`), plus raw bytes on a socket for requests no client would send."""

    def raw(self, data: bytes) -> bytes:
        """Send bytes exactly as given and read until the worker closes the connection."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(data)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    work = tmp_path / "work"
    adapter = work / "output" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text('{"r": 8}')
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.txt").write_text("PRIVATE-OUTSIDE-THE-OUTPUT")
    (work / "output" / "linked_folder").symlink_to(outside, target_is_directory=True)
    (adapter / "absolute").symlink_to("/etc/passwd")
    started = Worker(work, env=POD_SECRETS).start()
    yield started
    started.kill()


def secret_forms(value: str) -> list[str]:
    return [value, base64.b64encode(value.encode()).decode()]


def assert_nothing_echoed(worker: Worker, text: str) -> None:
    for value in (worker.token, *POD_SECRETS.values()):
        for form in secret_forms(value):
            assert form not in text, "an answer carried the token or a value from the pod's environment"


# ---------------------------------------------------------------------- limits
def test_bodies_without_a_length_are_refused_and_small_routes_have_small_limits(worker: Worker) -> None:
    chunked = worker.raw(
        f"PUT /job HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {worker.token}\r\n"
        "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
        "5\r\n{}   \r\n0\r\n\r\n".encode()
    )
    assert chunked.startswith(b"HTTP/1.1 411"), chunked[:200]
    for method, path in (("PUT", "/job"), ("POST", "/job/start"), ("POST", "/job/cancel"), ("POST", "/shutdown")):
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {worker.token}\r\n"
            f"Content-Length: {MAX_JSON_BYTES + 1}\r\n\r\n"
        )
        answer = worker.raw(head.encode())  # announce the body, send none: the limit is read from the header
        assert answer.startswith(b"HTTP/1.1 413"), (path, answer[:200])
    assert worker.process.poll() is None  # the refused /shutdown did nothing
    assert worker.request("GET", "/health").status == 200


# ---------------------------------------------------------------------- the token
def test_the_token_counts_only_in_the_authorization_header(worker: Worker) -> None:
    elsewhere = [
        ("/health?token=" + worker.token, {}),
        ("/health?access_token=" + worker.token, {}),
        ("/health", {"Cookie": f"token={worker.token}"}),
        ("/health", {"X-Api-Key": worker.token}),
        ("/health", {"Authorization": worker.token}),  # no scheme
        ("/health", {"Authorization": f"Token {worker.token}"}),
        ("/health", {"Authorization": f"Bearer {worker.token} extra"}),
        ("/health", {"Authorization": "Basic " + base64.b64encode(f"user:{worker.token}".encode()).decode()}),
    ]
    for path, headers in elsewhere:
        answer = worker.request("GET", path, headers=headers, token=None)
        assert answer.status == 401, (path, headers)
        assert answer.body == b'{"error": "unauthorized"}'


# ---------------------------------------------------------------------- files
def test_a_symlinked_folder_or_an_absolute_symlink_in_the_output_serves_nothing(worker: Worker) -> None:
    for path in (
        "/artifacts/linked_folder/private.txt",
        "/artifacts/linked_folder%2Fprivate.txt",
        "/artifacts/adapter/absolute",
        "/artifacts.tar?prefix=linked_folder",
    ):
        answer = worker.request("GET", path)
        assert answer.status in (403, 404), (path, answer.status)
        assert b"PRIVATE-OUTSIDE" not in answer.body and b"root:" not in answer.body
    names = [entry["name"] for entry in json.loads(worker.request("GET", "/artifacts").body)]
    assert names == ["adapter/adapter_config.json"]
    tar = worker.request("GET", "/artifacts.tar")
    assert tar.status == 200 and b"PRIVATE-OUTSIDE" not in tar.body and b"root:" not in tar.body


def test_a_job_id_cannot_name_a_place_outside_the_work_folder(worker: Worker, tmp_path: Path) -> None:
    before = sorted(p.name for p in tmp_path.iterdir())
    for job_id in ("../escaped", "..", "/tmp/escaped", "a/../../escaped", "x" * 65, ".hidden", "a\\b", "a\x00b"):
        body = {"job_id": job_id, "config": {"model": "m", "dataset": "d.jsonl"}, "dataset_sha256": "0" * 64}
        answer = worker.request("PUT", "/job", json.dumps({**body, "dataset_bytes": 10}).encode())
        assert answer.status == 400, job_id
        assert "job_id must be" in json.loads(answer.body)["error"]
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert json.loads(worker.request("GET", "/health").body)["state"] == "idle"


# ---------------------------------------------------------------------- nothing echoed
def test_no_answer_echoes_the_token_or_the_pods_environment(worker: Worker) -> None:
    hf = POD_SECRETS["HF_TOKEN"]
    answers: list[Answer] = [
        worker.request("GET", f"/no/such/route/{hf}"),
        worker.request("GET", f"/no/such/route/{worker.token}"),
        worker.request("GET", f"/artifacts/{hf}.bin"),
        worker.request("GET", f"/events?after={worker.token}"),
        worker.request("DELETE", f"/job?x={hf}"),
        worker.request("GET", f"/artifacts?prefix=../{worker.token}"),
    ]
    # A config that quotes the secrets is refused with a message that names the field, not the value.
    for value in (worker.token, hf):
        body = {
            "job_id": "job-1",
            "config": {"model": "m", "dataset": "d.jsonl", "hub": {"repo_id": f"not a repo {value}"}},
            "dataset_sha256": "0" * 64,
            "dataset_bytes": 10,
        }
        refused = worker.request("PUT", "/job", json.dumps(body).encode())
        assert refused.status == 400 and "hub.repo_id" in json.loads(refused.body)["error"]
        answers.append(refused)
    # http.server's own errors (a broken request line, an unknown method, TRACE, a huge header) quote nothing.
    raw = [
        worker.raw(f"GET /{worker.token} HTTP/1.1 extra\r\nAuthorization: Bearer {worker.token}\r\n\r\n".encode()),
        worker.raw(f"BREW /{hf} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {worker.token}\r\n\r\n".encode()),
        worker.raw(f"TRACE / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {worker.token}\r\nX-Echo: {hf}\r\n\r\n".encode()),
        worker.raw(f"GET / HTTP/1.1\r\nHost: x\r\nX-Big: {hf}{'a' * 70_000}\r\n\r\n".encode()),
        worker.raw(f"GET /{'a' * 70_000}{hf} HTTP/1.1\r\n\r\n".encode()),
    ]
    for answer in raw:
        # A request line it cannot read gets an HTTP/0.9-style answer: the short JSON body alone.
        status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/1.") else json.loads(answer)["error"][5:].encode()
        assert status[:1] in (b"4", b"5"), answer[:100]
    answers += [
        worker.request("GET", path) for path in ("/health", "/job", "/job/dataset", "/events?after=-1&timeout=0", "/artifacts")
    ]

    everything = "".join(a.text for a in answers) + "".join(r.decode("utf-8", "replace") for r in raw)
    assert_nothing_echoed(worker, everything)
    assert worker.process.poll() is None
    log = (worker.work_dir / "worker.log").read_text(errors="replace")
    assert_nothing_echoed(worker, log + worker.output())
