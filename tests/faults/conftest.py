"""The fault matrix's plumbing: a recorder per test, a flaky network, and the summary line.

Every test in this folder injects one fault into a real RunPod job on the emulator
(the unmodified ``runpod`` SDK, pods running our real bootstrap and worker) and
records it through the ``fault`` fixture:

- ``fault.inject(name)`` when the fault is set up;
- ``fault.check_events(job)`` measures what the client lost: each pod's own
  ``events.jsonl`` (in the emulated pod's working folder) against what the client
  received (``pods/<pod_id>.events.jsonl`` in the job folder: dense seq, same
  events) and against the job's log (every copied event once; steps trained again
  after a resume charted once);
- ``fault.check_adapter(job)`` where training finished: the adapter must be on this
  machine (or, with ``kept_at``, at the place the pod recorded it kept it);
- ``fault.billed_unwatched(seconds)`` the pod-seconds billed after a job finished
  while nobody watched (printed beside the test, in dollars at the H100 price);
- at teardown the emulator's ledger gives the pods left billing.

A fault counts as survived when its test passed and no pod was left. At the end of
the run one line sums it up, e.g. ``faults: 16 injected, 16 survived, pods left: 0,
events lost: 0, adapters lost: 0``.

:class:`FlakyNetwork` sits between the client and the emulator's pod proxy (the
client is pointed at it through ``UNSLOTH_NB_RUNPOD_PROXY_TEMPLATE``) and fails
requests on demand: error pages before the request reaches the pod, answers lost
after the pod acted, answers cut in the middle of the body.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fixtures import TINY_TRAIN, fitting_rows, jsonl_bytes, tiny_job

import unsloth_nb
from unsloth_nb.backends.runpod.pods import pod_name
from unsloth_nb.jobrun.events import Event, read_events_file
from unsloth_nb.testing.runpod_emulator import RunPodEmulator

#: Event kinds the worker produces and the client copies into the job's log.
COMPARED_KINDS = frozenset({"metrics", "progress", "checkpoint", "artifact", "log"})
#: Log sources that are the client's own words, not the pod's.
CLIENT_SOURCES = frozenset(
    {"runpod", "planner", "controller", "library"}
)  # library: client-side output captured into the job log


# ---------------------------------------------------------------------- the recorder and the summary
@dataclass
class FaultRecord:
    test: str
    injected: list[str] = field(default_factory=list)
    events_lost: int = 0
    duplicates: int = 0
    pods_left: int = 0
    passed: bool = False
    adapters_checked: int = 0
    adapters_lost: int = 0
    adapters_given_up: int = 0  # let go on purpose: nobody collected them within runpod.keep_uncollected, as priced
    billed_unwatched_s: float | None = None


#: What the billing figures are priced at: an H100 SXM (NVIDIA H100 80GB HBM3), secure cloud, $/h.
H100_USD_PER_HOUR = 2.99


_RECORDS: list[FaultRecord] = []


class FaultRecorder:
    """What one fault test hands the summary: the faults it injected and what the client lost."""

    def __init__(self, record: FaultRecord, emulator: RunPodEmulator) -> None:
        self.record = record
        self.emulator = emulator
        self.exempt: dict[str, int] = {}  # pod id -> first seq that died with the pod (written after it vanished)

    def inject(self, name: str) -> None:
        self.record.injected.append(name)

    def check_adapter(self, job: unsloth_nb.Job, kept_at: Path | None = None) -> bool:
        """Whether the trained adapter is on this machine (or at ``kept_at``); a missing one counts as lost."""
        self.record.adapters_checked += 1
        folders = [p for p in (job.adapter_path, kept_at) if p is not None]
        kept = any((folder / "adapter_config.json").is_file() for folder in folders)
        if not kept:
            self.record.adapters_lost += 1
        return kept

    def gave_up_adapter(self) -> None:
        """An adapter the pod let go by the rule the plan priced (nobody collected it within the cap): shown, not lost."""
        self.record.adapters_given_up += 1

    def billed_unwatched(self, seconds: float) -> None:
        """Pod-seconds billed after the job finished with nobody watching (the worst case a scenario adds)."""
        self.record.billed_unwatched_s = max(seconds, self.record.billed_unwatched_s or 0.0)

    def check_events(self, job: unsloth_nb.Job) -> tuple[int, int]:
        """(lost, duplicated) events between the job's pods and the client; recorded and returned."""
        lost, duplicates = measure_events(job, self.emulator, self.exempt)
        self.record.events_lost += lost
        self.record.duplicates += duplicates
        return lost, duplicates


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_PASSED] = report.passed


_PASSED = pytest.StashKey[bool]()


@pytest.fixture
def fault(request: pytest.FixtureRequest, runpod_emulator: RunPodEmulator) -> Iterator[FaultRecorder]:
    record = FaultRecord(request.node.name)
    yield FaultRecorder(record, runpod_emulator)
    # Torn down before the emulator, so its ledger is still there to read.
    record.pods_left = len(runpod_emulator.ledger.running_pods()) + len(runpod_emulator.serverless.active_workers())
    record.passed = request.node.stash.get(_PASSED, False)
    _RECORDS.append(record)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _RECORDS:
        return
    injected = sum(len(r.injected) for r in _RECORDS)
    survived = sum(len(r.injected) for r in _RECORDS if r.passed and r.pods_left == 0 and r.adapters_lost == 0)
    pods_left = sum(r.pods_left for r in _RECORDS)
    lost = sum(r.events_lost for r in _RECORDS)
    adapters_lost = sum(r.adapters_lost for r in _RECORDS)
    terminalreporter.write_sep("-", "fault matrix")
    for r in _RECORDS:
        verdict = "survived" if r.passed and r.pods_left == 0 and r.adapters_lost == 0 else "NOT survived"
        billed = ""
        if r.billed_unwatched_s is not None:
            usd = r.billed_unwatched_s * H100_USD_PER_HOUR / 3600
            billed = f", billed unwatched {r.billed_unwatched_s:.0f} pod-s = ${usd:.3f} at H100 ${H100_USD_PER_HOUR}/h"
        terminalreporter.write_line(
            f"  {r.test}: {', '.join(r.injected) or '-'} -> {verdict} "
            f"(pods left {r.pods_left}, events lost {r.events_lost}, duplicated {r.duplicates}, "
            f"adapters lost {r.adapters_lost}{f', given up past the cap {r.adapters_given_up}' if r.adapters_given_up else ''}"
            f"{billed})"
        )
    terminalreporter.write_line(
        f"faults: {injected} injected, {survived} survived, pods left: {pods_left}, events lost: {lost}, "
        f"adapters lost: {adapters_lost}"
    )


# ---------------------------------------------------------------------- measuring lost events
def job_pods(job: unsloth_nb.Job, emulator: RunPodEmulator) -> list[str]:
    """Every pod the emulator ever billed for this job, in creation order."""
    name = pod_name(job.id)
    return [p["pod_id"] for p in emulator.ledger.to_dict()["pods"] if p["name"] == name]


def worker_events(emulator: RunPodEmulator, pod_id: str) -> Path:
    return emulator.workdir / "pods" / pod_id / "unsloth-nb-worker" / "events.jsonl"


def received_events(job: unsloth_nb.Job, pod_id: str) -> list[dict[str, Any]]:
    path = job.folder.path / "pods" / f"{pod_id}.events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def measure_events(job: unsloth_nb.Job, emulator: RunPodEmulator, exempt: dict[str, int]) -> tuple[int, int]:
    """Compare each pod's own event log with what reached the client; returns (lost, duplicated).

    Transport: the client's record of a pod's events must hold every seq the worker
    wrote (except those ``exempt`` says were written after the pod vanished), each
    once, with the same content. Job log: every copied event of those, once, where
    metrics and progress for a step already charted (trained again after a resume)
    are expected to be left out, as the chart must not show a step twice.
    """
    lost = duplicates = 0
    arrived: list[Event] = []
    for pod_id in job_pods(job, emulator):
        path = worker_events(emulator, pod_id)
        if not path.exists():
            continue  # the worker never started (a pod that never became ready)
        remote = list(read_events_file(path))
        by_seq = {e.seq: e for e in remote}
        lost += len(set(range(len(remote))) - set(by_seq))  # the worker's own log must be dense
        got = received_events(job, pod_id)
        seqs = [int(e["seq"]) for e in got]
        duplicates += len(seqs) - len(set(seqs))
        limit = exempt.get(pod_id, len(remote))
        lost += len({e.seq for e in remote if e.seq < limit} - set(seqs))
        for item in got:
            original = by_seq.get(int(item["seq"]))
            if original is None or original.kind != item["kind"] or original.data != item["data"]:
                lost += 1  # arrived changed, or something the pod never wrote
            else:
                arrived.append(original)
    expected = Counter(_key(e.kind, e.data, None) for e in _charted_once(arrived) if _compared(e))
    output_dir = Path(job.record.output_dir) if job.record.output_dir else job.folder.outputs
    actual = Counter(_key(e.kind, e.data, output_dir) for e in job.events() if _compared(e))
    lost += sum((expected - actual).values())
    duplicates += sum((actual - expected).values())
    return lost, duplicates


def _charted_once(events: list[Event]) -> Iterator[Event]:
    highest: dict[str, int] = {}
    for event in events:
        step = event.data.get("step")
        if event.kind in ("metrics", "progress") and isinstance(step, int):
            series = "progress" if event.kind == "progress" else ("eval" if "loss" not in event.data else "train")
            if step <= highest.get(series, -1):
                continue
            highest[series] = step
        yield event


def _compared(event: Event) -> bool:
    if event.kind not in COMPARED_KINDS:
        return False
    return not (event.kind == "log" and event.data.get("source") in CLIENT_SOURCES)


def _key(kind: str, data: dict[str, Any], output_dir: Path | None) -> str:
    data = dict(data)
    path = data.get("path")
    if output_dir is not None and kind in ("artifact", "checkpoint") and isinstance(path, str) and Path(path).is_absolute():
        data["path"] = Path(path).relative_to(output_dir).as_posix()
    return json.dumps([kind, data], sort_keys=True)


# ---------------------------------------------------------------------- jobs
#: Rows per fault job: each job trains a few steps, so a short file keeps its dataset checks quick.
FAULT_JOB_ROWS = 24


@pytest.fixture
def dataset_file(tmp_path: Path, superbowl_rows: list[dict[str, Any]]) -> Path:
    """The shared dataset file's rows, fewer of them: a fault row trains a few steps."""
    path = tmp_path / "superbowl.jsonl"
    path.write_bytes(jsonl_bytes(fitting_rows(superbowl_rows[:FAULT_JOB_ROWS])))
    return path


def train_settings(**overrides: Any) -> dict[str, Any]:
    return {**TINY_TRAIN, "max_steps": 3, **overrides}


def start_job(
    model: Path, dataset: Path, *, placement: str = "runpod", train: dict[str, Any] | None = None, **config: Any
) -> unsloth_nb.Job:
    """A tiny LoRA job on the emulated RunPod (a pod, or ``placement="serverless"``): what every fault row runs."""
    return tiny_job(placement, model, dataset, train=train_settings(**(train or {})), **config)


def wait_for_event(job: unsloth_nb.Job, test: Any, timeout: float = 180.0) -> Event:
    """The first event of the job for which ``test(event)`` is true (fails when the job ends first)."""
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline:
        for event in job.events(after=seen):
            seen = event.seq
            if test(event):
                return event
        assert not job.done, f"job ended ({job.state}: {job.error}) before the awaited event"
        time.sleep(0.1)
    raise AssertionError(f"no such event within {timeout} s; job is {job.state}")


def training(event: Event) -> bool:
    return event.kind == "metrics" and event.data.get("loss") is not None


def end_reason(job: unsloth_nb.Job) -> str:
    return str(job.events(kinds={"status"})[-1].get("reason") or "")


def states(job: unsloth_nb.Job) -> list[str]:
    return [e["state"] for e in job.events(kinds={"status"})]


def assert_no_pod_left(emulator: RunPodEmulator, job: unsloth_nb.Job) -> None:
    assert emulator.ledger.running_pods() == []
    for pod_id in job_pods(job, emulator):
        assert emulator.pod(pod_id) is None, f"pod {pod_id} still exists"
    assert states(job)[-2] == "terminating", states(job)


# ---------------------------------------------------------------------- a kernel that dies mid-job
CLIENT_SCRIPT = """
import json, sys, time
import unsloth_nb

model, dataset, max_steps, until, extra = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], json.loads(sys.argv[5])
train = {"max_steps": max_steps, "batch_size": 2, "grad_accum": 1, "max_seq_length": 512, "warmup_steps": 0, **extra.pop("train", {})}
job = unsloth_nb.train(model=model, dataset=dataset, placement="runpod", train=train, lora={"r": 8, "alpha": 8}, **extra)
deadline = time.monotonic() + 240
while not (job.metrics() if until == "training" else job.record.pod_id):
    if job.done or time.monotonic() > deadline:
        print("not there:", job.state, job.error, flush=True)
        sys.exit(3)
    time.sleep(0.05)
print(job.id, flush=True)
time.sleep(600)  # until killed, as a kernel is
"""


def start_and_kill_client(tiny_model: Path, dataset_file: Path, max_steps: int, until: str, **config: Any) -> str:
    """Start a job in another process, wait for ``until`` ("pod" or "training"), then SIGKILL that process.

    ``config`` adds to the job's config (``train={...}`` merges into the train section).
    Returns the job id; the job folder and the pod are left as a dead kernel leaves them.
    """
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT_SCRIPT, str(tiny_model), str(dataset_file), str(max_steps), until, json.dumps(config)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert client.stdout is not None
    line = client.stdout.readline().strip()
    client.kill()  # no atexit, no finally: a kernel that died
    client.wait(timeout=30)
    assert line and " " not in line, line
    return line


# ---------------------------------------------------------------------- a flaky network in front of the pods
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length", "host"})
BAD_GATEWAY_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>"
    b"<hr><center>cloudflare</center></body></html>\n"
)


@dataclass(frozen=True)
class Refusal:
    """An answer the network gives instead of the pod's."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


class FlakyNetwork:
    """An HTTP relay between the client and the emulator's pod proxy that fails on demand.

    - ``refusals``: each kind of call (method and route) first gets these answers, in
      order, without reaching the pod;
    - ``lose_answer_once``: each kind of call is sent to the pod once and its answer
      thrown away (the connection closes without a byte);
    - ``drop_events`` / ``cut_events``: the next N answers of ``GET /events`` that
      carry events are thrown away, or cut half-way through the body.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.refusals: tuple[Refusal, ...] = ()
        self.lose_answer_once = False
        self.drop_events = 0
        self.cut_events = 0
        self.calls: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self._lock = threading.Lock()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _relay(self) -> None:
                relay.handle(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def template(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{{pod_id}}-{{port}}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def kind_of(method: str, path: str) -> str:
        route = urlsplit(path).path.split("/", 2)[-1] if path.count("/") >= 2 else ""
        route = "/" + route
        if route.startswith("/artifacts/"):
            route = "/artifacts/*"
        return f"{method} {route}"

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        method, path = handler.command, handler.path
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        kind = self.kind_of(method, path)
        with self._lock:
            self.calls[kind] += 1
            refusal_index = self.failed[kind] if self.failed[kind] < len(self.refusals) else None
            lose = self.lose_answer_once and self.failed[kind] == 0 and not self.refusals
            if refusal_index is not None or lose:
                self.failed[kind] += 1
        if refusal_index is not None:
            refusal = self.refusals[refusal_index]
            self._answer(handler, refusal.status, refusal.body, [("Content-Type", refusal.content_type), *refusal.headers])
            return
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=120)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(method, path, body=body if method in ("PUT", "POST") else None, headers=headers)
            response = upstream.getresponse()
            answer = response.read()
            answer_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            status = response.status
        except (OSError, http.client.HTTPException):
            self._answer(handler, 502, BAD_GATEWAY_PAGE, [("Content-Type", "text/html")])
            return
        finally:
            upstream.close()
        if lose:
            self._hang_up(handler)
            return
        if kind == "GET /events" and status == 200 and _has_events(answer):
            with self._lock:
                drop, cut = self.drop_events > 0, self.drop_events <= 0 and self.cut_events > 0
                self.drop_events -= int(drop)
                self.cut_events -= int(cut)
                if drop or cut:
                    self.failed["GET /events (with events)"] += 1
            if drop:
                self._hang_up(handler)
                return
            if cut:
                self._answer(handler, status, answer, answer_headers, cut=True)
                return
        self._answer(handler, status, answer, answer_headers)

    @staticmethod
    def _answer(
        handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: list[tuple[str, str]], cut: bool = False
    ) -> None:
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        if cut or status >= 400:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body[: len(body) // 2] if cut else body)
            handler.wfile.flush()
        if cut:
            _close(handler)

    @staticmethod
    def _hang_up(handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True
        _close(handler)


def _close(handler: BaseHTTPRequestHandler) -> None:
    try:
        handler.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _has_events(body: bytes) -> bool:
    try:
        return bool(json.loads(body).get("events"))
    except (ValueError, AttributeError):
        return False


@pytest.fixture
def flaky_network(runpod_emulator: RunPodEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlakyNetwork]:
    """The client reaches the pods through a :class:`FlakyNetwork` (which behaves until told otherwise)."""
    network = FlakyNetwork(runpod_emulator.proxy_port)
    monkeypatch.setenv("UNSLOTH_NB_RUNPOD_PROXY_TEMPLATE", network.template)
    yield network
    network.close()
