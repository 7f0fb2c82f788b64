"""The emulated account's serverless side: templates, endpoints, their request queues and their workers.

An endpoint's workers are local processes running its template's start command, as a pod's container
does (:mod:`.containers`), with the environment RunPod gives a serverless worker: the webhook URLs the
unmodified ``runpod`` SDK worker loop reads (``RUNPOD_WEBHOOK_GET_JOB``, ``..._POST_OUTPUT``,
``..._POST_STREAM``, ``..._PING``), ``RUNPOD_ENDPOINT_ID``, ``RUNPOD_POD_ID`` (the worker id) and
``RUNPOD_AI_API_KEY``. So the SDK's own ``runpod.serverless.start`` takes requests from
:mod:`.serverless_api`'s ``job-take`` route and posts their stream chunks and results back.

Scaling, as RunPod documents it for the queue scaler: a request waiting and no free worker starts one
(up to ``workersMax``) after ``cold_start_s``; a worker idle for ``idleTimeout`` seconds is stopped;
``workersMin`` workers are kept. A request past its execution timeout (``policy.executionTimeout``,
else the endpoint's ``executionTimeoutMs``, else 600 s) is TIMED_OUT and its worker told to stop it,
then killed if it has not within a grace. Billing: every second a worker process exists.

Fault knobs (:class:`ServerlessFaults`): the cold-start delay, a worker killed a given time after it
took a request, ``/run`` answered 429 a number of times (a throttled queue), ``/run`` answers lost
after the request was queued, and an execution timeout imposed on every request.

Secrets: ``{{ RUNPOD_SECRET_<name> }}`` in a template's env is replaced by the account secret of that name
(:attr:`Serverless.secrets`) in the worker's environment, as RunPod does; the template keeps the reference.
"""

from __future__ import annotations

import itertools
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unsloth_nb.testing.runpod_emulator.containers import container_env_base, kill, start_argv
from unsloth_nb.testing.runpod_emulator.reaper import REAPER

DEFAULT_EXECUTION_TIMEOUT_S = 600.0
DEFAULT_TTL_S = 24 * 3600.0
#: How long a worker that was told to stop a request may take before it is killed.
STOP_GRACE_S = 10.0
#: Statuses of a request that is over.
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")

_ids = itertools.count(1)


def _new_id(prefix: str) -> str:
    return f"{prefix}{next(_ids):04d}{secrets.token_hex(4)}"


@dataclass
class ServerlessFaults:
    """Knobs for the serverless side; counts are consumed one per event."""

    cold_start_s: float = 0.0  # from "a worker is needed" to its process starting (image pull, boot)
    kill_worker_after_s: float | None = None  # kill a worker this long after it took a request (once)
    #: kill a worker once its request has streamed this many loss events (once): mid-training whatever the
    #: machine's speed, where a time would race a fast tiny-model run to its end
    kill_worker_after_losses: int | None = None
    throttled_runs: int = 0  # /run answers 429 this many times
    lost_runs: int = 0  # /run queues the request, then drops the connection unanswered, this many times
    execution_timeout_s: float | None = None  # every request's execution timeout, whatever it asked for

    def update(self, changes: Mapping[str, Any]) -> None:
        for name, value in changes.items():
            if not hasattr(self, name):
                raise ValueError(f"unknown serverless fault {name!r}")
            setattr(self, name, value)


@dataclass
class Template:
    id: str
    name: str
    image: str
    start_cmd: list[str]
    env: dict[str, str]
    container_disk_gb: int = 20
    is_serverless: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "imageName": self.image,
            "dockerStartCmd": self.start_cmd,
            "env": dict(self.env),
            "containerDiskInGb": self.container_disk_gb,
            "isServerless": self.is_serverless,
        }


@dataclass
class Worker:
    id: str
    endpoint_id: str
    gpu_type_id: str
    created: float
    process: subprocess.Popen[bytes] | None = None
    request_id: str | None = None
    idle_since: float = 0.0
    to_stop: list[str] = field(default_factory=list)
    ended: float | None = None
    killed_once: bool = False


@dataclass
class Request:
    id: str
    endpoint_id: str
    input: Any
    created: float
    execution_timeout_s: float
    ttl_s: float
    status: str = "IN_QUEUE"
    worker_id: str | None = None
    started: float | None = None
    finished: float | None = None
    stream: list[dict[str, Any]] = field(default_factory=list)  # chunks not yet read by /stream
    chunks: int = 0
    losses: int = 0  # loss events streamed so far
    output: Any = None
    error: Any = None
    stop_sent: float | None = None

    def to_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.started is not None:
            answer["delayTime"] = int((self.started - self.created) * 1000)
            end = self.finished if self.finished is not None else time.time()
            answer["executionTime"] = int((end - self.started) * 1000)
        if self.worker_id:
            answer["workerId"] = self.worker_id
        if self.output is not None:
            answer["output"] = self.output
        if self.error is not None:
            answer["error"] = self.error
        return answer


@dataclass
class Endpoint:
    id: str
    name: str
    template_id: str
    gpu_type_ids: list[str]
    workers_min: int
    workers_max: int
    idle_timeout_s: float
    execution_timeout_ms: int | None
    flashboot: bool
    created: float

    def to_json(self, workers: list[Worker]) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "templateId": self.template_id,
            "gpuTypeIds": list(self.gpu_type_ids),
            "workersMin": self.workers_min,
            "workersMax": self.workers_max,
            "idleTimeout": int(self.idle_timeout_s),
            "executionTimeoutMs": self.execution_timeout_ms,
            "flashboot": self.flashboot,
            "workers": [{"id": w.id, "status": "RUNNING" if w.request_id else "IDLE"} for w in workers if w.ended is None],
        }


@dataclass(frozen=True)
class WorkerSpan:
    """One worker's life on the bill: the GPU it held and for how long."""

    worker_id: str
    endpoint_id: str
    gpu_type_id: str
    start: float
    end: float | None

    def seconds(self, now: float | None = None) -> float:
        return (self.end if self.end is not None else (now or time.time())) - self.start


class Serverless:
    """The serverless state of one emulated account, with its scaler thread."""

    def __init__(self, workdir: Path, extra_env: Mapping[str, str], stop_grace_s: float = 3.0) -> None:
        self.workdir = workdir
        self.extra_env = extra_env
        self.stop_grace_s = stop_grace_s
        self.faults = ServerlessFaults()
        self.api_base_url = ""  # the job API (api.runpod.ai's stand-in), set when its server starts
        self.templates: dict[str, Template] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.requests: dict[str, Request] = {}
        self.workers: dict[str, Worker] = {}
        #: Every template ever created, deleted ones too: what RunPod was told (the secrets test reads it).
        self.template_history: list[Template] = []
        #: The account's secrets (RunPod console, Secrets): ``{{ RUNPOD_SECRET_<name> }}`` in a template's env
        #: becomes the value when a worker starts; tests set them here.
        self.secrets: dict[str, str] = {}
        #: The ``model`` of every chat completion a vLLM endpoint answered, in order (tests count them).
        self.chat_requests: list[str] = []
        #: What a vLLM endpoint answers from, loaded by its first request (serverless_vllm.py) and dropped with it:
        #: endpoint id -> (model, tokenizer, LoRA name or None).
        self.served_models: dict[str, tuple[Any, Any, str | None]] = {}
        self.served_lock = threading.Lock()
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._closing = threading.Event()
        self._scaler = threading.Thread(target=self._scale_forever, name="runpod-emulator-scaler", daemon=True)
        self._scaler.start()

    # ------------------------------------------------------------------ REST v2 resources
    def create_template(self, body: Mapping[str, Any]) -> Template:
        name, image = str(body.get("name") or ""), str(body.get("imageName") or "")
        if not name or not image:
            raise ValueError("a template needs name and imageName")
        start = body.get("dockerStartCmd") or []
        if isinstance(start, str):
            start = [start]
        env = body.get("env") or {}
        if not isinstance(env, dict):
            raise ValueError("env is a map of name to value")
        with self.lock:
            if any(t.name == name for t in self.templates.values()):
                raise ValueError(f"a template named {name} exists")
            template = Template(_new_id("tpl"), name, image, [str(a) for a in start], {str(k): str(v) for k, v in env.items()})
            template.container_disk_gb = int(body.get("containerDiskInGb") or 20)
            template.is_serverless = bool(body.get("isServerless", False))
            self.templates[template.id] = template
            self.template_history.append(template)
            return template

    def delete_template(self, template_id: str) -> bool:
        with self.lock:
            if any(e.template_id == template_id for e in self.endpoints.values()):
                raise ValueError("the template is used by an endpoint; delete the endpoint first")
            return self.templates.pop(template_id, None) is not None

    def create_endpoint(self, body: Mapping[str, Any]) -> Endpoint:
        template = self.templates.get(str(body.get("templateId") or ""))
        if template is None:
            raise LookupError(f"no template {body.get('templateId')!r}")
        gpus = body.get("gpuTypeIds") or []
        if not isinstance(gpus, list) or not gpus:
            raise ValueError("gpuTypeIds must list at least one GPU type")
        workers_min, workers_max = int(body.get("workersMin") or 0), int(body.get("workersMax") or 3)
        if workers_min > workers_max:
            raise ValueError("workersMin is larger than workersMax")
        timeout = body.get("executionTimeoutMs")
        with self.lock:
            endpoint = Endpoint(
                _new_id("ep"),
                str(body.get("name") or template.name),
                template.id,
                [str(g) for g in gpus],
                workers_min,
                workers_max,
                float(body.get("idleTimeout") or 5),
                int(timeout) if timeout is not None else None,
                bool(body.get("flashboot", False)),
                time.time(),
            )
            self.endpoints[endpoint.id] = endpoint
            self.changed.notify_all()
            return endpoint

    def update_endpoint(self, endpoint_id: str, body: Mapping[str, Any]) -> Endpoint:
        with self.lock:
            endpoint = self.endpoints[endpoint_id]
            if "workersMin" in body:
                endpoint.workers_min = int(body["workersMin"])
            if "workersMax" in body:
                endpoint.workers_max = int(body["workersMax"])
            if "idleTimeout" in body:
                endpoint.idle_timeout_s = float(body["idleTimeout"])
            self.changed.notify_all()
            return endpoint

    def delete_endpoint(self, endpoint_id: str) -> bool:
        """Remove the endpoint: its workers are killed and its unfinished requests cancelled."""
        with self.lock:
            endpoint = self.endpoints.pop(endpoint_id, None)
            if endpoint is None:
                return False
            for request in self.requests.values():
                if request.endpoint_id == endpoint_id and request.status not in FINAL:
                    self._finish(request, "CANCELLED")
            doomed = [w for w in self.workers.values() if w.endpoint_id == endpoint_id and w.ended is None]
        with self.served_lock:
            self.served_models.pop(endpoint_id, None)
        for worker in doomed:
            self._end_worker(worker)
        return True

    def endpoint_workers(self, endpoint_id: str) -> list[Worker]:
        with self.lock:
            return [w for w in self.workers.values() if w.endpoint_id == endpoint_id]

    # ------------------------------------------------------------------ the job API
    def submit(self, endpoint_id: str, body: Any) -> Request:
        if not isinstance(body, dict) or "input" not in body:
            raise ValueError("the body must be JSON with an 'input'")
        policy = body.get("policy") or {}
        with self.lock:
            endpoint = self.endpoints[endpoint_id]
            timeout_ms = policy.get("executionTimeout") or endpoint.execution_timeout_ms
            request = Request(
                _new_id("req-"),
                endpoint_id,
                body["input"],
                time.time(),
                float(timeout_ms) / 1000 if timeout_ms else DEFAULT_EXECUTION_TIMEOUT_S,
                float(policy.get("ttl") or DEFAULT_TTL_S * 1000) / 1000,
            )
            self.requests[request.id] = request
            self.changed.notify_all()
            return request

    def request(self, endpoint_id: str, request_id: str) -> Request:
        with self.lock:
            request = self.requests.get(request_id)
            if request is None or request.endpoint_id != endpoint_id:
                raise LookupError(f"no request {request_id} on endpoint {endpoint_id}")
            return request

    def read_stream(self, endpoint_id: str, request_id: str) -> dict[str, Any]:
        """The chunks streamed since the last read (RunPod's ``/stream`` hands each chunk out once)."""
        with self.lock:
            request = self.request(endpoint_id, request_id)
            chunks, request.stream = request.stream, []
            return {"id": request.id, "status": request.status, "stream": chunks}

    def cancel(self, endpoint_id: str, request_id: str) -> Request:
        with self.lock:
            request = self.request(endpoint_id, request_id)
            if request.status not in FINAL:
                self._finish(request, "CANCELLED")
            return request

    def purge(self, endpoint_id: str) -> int:
        with self.lock:
            queued = [r for r in self.requests.values() if r.endpoint_id == endpoint_id and r.status == "IN_QUEUE"]
            for request in queued:
                self._finish(request, "CANCELLED")
            return len(queued)

    def health(self, endpoint_id: str) -> dict[str, Any]:
        with self.lock:
            if endpoint_id not in self.endpoints:
                raise LookupError(endpoint_id)
            mine = [r for r in self.requests.values() if r.endpoint_id == endpoint_id]
            workers = [w for w in self.workers.values() if w.endpoint_id == endpoint_id and w.ended is None]
            count = {s: sum(1 for r in mine if r.status == s) for s in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED")}
            return {
                "jobs": {
                    "inQueue": count["IN_QUEUE"],
                    "inProgress": count["IN_PROGRESS"],
                    "completed": count["COMPLETED"],
                    "failed": count["FAILED"],
                    "retried": 0,
                },
                "workers": {
                    "idle": sum(1 for w in workers if w.process is not None and w.request_id is None),
                    "running": sum(1 for w in workers if w.request_id is not None),
                    "initializing": sum(1 for w in workers if w.process is None),
                    "throttled": 0,
                },
            }

    # ------------------------------------------------------------------ the worker side
    def take(self, endpoint_id: str, worker_id: str, wait_s: float) -> Request | None:
        """A queued request for this worker (long-polls up to ``wait_s``); None when there is none."""
        deadline = time.monotonic() + wait_s
        with self.lock:
            while True:
                worker = self.workers.get(worker_id)
                if worker is None or worker.ended is not None or endpoint_id not in self.endpoints:
                    return None
                if worker.request_id is None:
                    queued = sorted(
                        (r for r in self.requests.values() if r.endpoint_id == endpoint_id and r.status == "IN_QUEUE"),
                        key=lambda r: r.created,
                    )
                    if queued:
                        request = queued[0]
                        request.status, request.worker_id, request.started = "IN_PROGRESS", worker_id, time.time()
                        worker.request_id = request.id
                        return request
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.changed.wait(left)

    def stream_chunk(self, worker_id: str, request_id: str, chunk: Any) -> None:
        with self.lock:
            request = self.requests.get(request_id)
            if request is None or request.status in FINAL:
                return
            output = chunk.get("output") if isinstance(chunk, dict) else chunk
            request.stream.append({"output": output})
            request.chunks += 1
            events = output.get("events") if isinstance(output, dict) else None
            for event in events if isinstance(events, list) else []:
                data = event.get("data") if isinstance(event, dict) else None
                if isinstance(data, dict) and event.get("kind") == "metrics" and "loss" in data:
                    request.losses += 1

    def done(self, worker_id: str, request_id: str, result: Any) -> None:
        with self.lock:
            request = self.requests.get(request_id)
            worker = self.workers.get(worker_id)
            if worker is not None and worker.request_id == request_id:
                worker.request_id, worker.idle_since = None, time.monotonic()
            if request is None or request.status in FINAL:
                return
            result = result if isinstance(result, dict) else {"output": result}
            request.output = result.get("output")
            if result.get("error"):
                request.error = result["error"]
                self._finish(request, "FAILED")
            else:
                self._finish(request, "COMPLETED")

    def stop_signals(self, worker_id: str, wait_s: float) -> list[str]:
        deadline = time.monotonic() + wait_s
        with self.lock:
            while True:
                worker = self.workers.get(worker_id)
                if worker is None:
                    return []
                if worker.to_stop:
                    ids, worker.to_stop = worker.to_stop, []
                    return ids
                left = deadline - time.monotonic()
                if left <= 0 or worker.ended is not None:
                    return []
                self.changed.wait(left)

    # ------------------------------------------------------------------ billing
    def spans(self) -> list[WorkerSpan]:
        with self.lock:
            return [
                WorkerSpan(w.id, w.endpoint_id, w.gpu_type_id, w.created, w.ended)
                for w in self.workers.values()
                if w.process is not None or w.ended is not None
            ]

    def active_workers(self) -> list[str]:
        """Workers that exist now (starting, idle or running): what is billing."""
        with self.lock:
            return [w.id for w in self.workers.values() if w.ended is None]

    # ------------------------------------------------------------------ scaling
    def _finish(self, request: Request, status: str) -> None:
        request.status, request.finished = status, time.time()
        worker = self.workers.get(request.worker_id or "")
        if status in ("CANCELLED", "TIMED_OUT") and worker is not None and worker.request_id == request.id:
            worker.to_stop.append(request.id)
            request.stop_sent = time.monotonic()
        self.changed.notify_all()

    def _scale_forever(self) -> None:
        while not self._closing.wait(0.1):
            try:
                self._scale_once()
            except Exception:
                import logging

                logging.getLogger(__name__).exception("serverless scaler tick failed")

    def _scale_once(self) -> None:
        now = time.monotonic()
        to_end: list[Worker] = []
        to_start: list[Worker] = []
        with self.lock:
            for request in self.requests.values():
                running = request.status == "IN_PROGRESS" and request.started is not None
                limit = self.faults.execution_timeout_s or request.execution_timeout_s
                if running and time.time() - (request.started or 0.0) > limit:
                    request.error = f"execution timeout of {request.execution_timeout_s:.0f} s exceeded"
                    self._finish(request, "TIMED_OUT")
            for worker in self.workers.values():
                if worker.ended is not None:
                    continue
                busy = self.requests.get(worker.request_id or "")
                told = busy is not None and busy.status in FINAL and busy.stop_sent is not None
                if told and busy is not None and now - (busy.stop_sent or now) > STOP_GRACE_S:
                    to_end.append(worker)  # told to stop and did not: killed, as RunPod does
                    continue
                if worker.process is not None and worker.process.poll() is not None:
                    to_end.append(worker)  # the container died (a crash, a kill)
                    continue
                knob = self.faults.kill_worker_after_s
                armed = knob is not None and busy is not None and busy.started is not None and not worker.killed_once
                if armed and busy is not None and knob is not None and time.time() - (busy.started or 0.0) >= knob:
                    worker.killed_once = True
                    self.faults.kill_worker_after_s = None
                    to_end.append(worker)
                    continue
                losses = self.faults.kill_worker_after_losses
                if losses is not None and busy is not None and busy.losses >= losses and not worker.killed_once:
                    worker.killed_once = True
                    self.faults.kill_worker_after_losses = None
                    to_end.append(worker)
                    continue
            for endpoint in self.endpoints.values():
                workers = [
                    w for w in self.workers.values() if w.endpoint_id == endpoint.id and w.ended is None and w not in to_end
                ]
                queued = sum(1 for r in self.requests.values() if r.endpoint_id == endpoint.id and r.status == "IN_QUEUE")
                free = sum(1 for w in workers if w.request_id is None)
                want = min(endpoint.workers_max, max(endpoint.workers_min, len(workers) - free + queued))
                for _ in range(want - len(workers)):
                    worker = Worker(_new_id("wk"), endpoint.id, endpoint.gpu_type_ids[0], time.time())
                    worker.idle_since = now
                    self.workers[worker.id] = worker
                    to_start.append(worker)
                idle = [w for w in workers if w.request_id is None and w.process is not None]
                extra = len(workers) - max(endpoint.workers_min, 0)
                for worker in idle:
                    if extra > 0 and not queued and now - worker.idle_since > endpoint.idle_timeout_s:
                        to_end.append(worker)
                        extra -= 1
        for worker in to_end:
            self._end_worker(worker)
        for worker in to_start:
            threading.Thread(target=self._boot, args=(worker,), name=f"runpod-emulator-{worker.id}", daemon=True).start()

    def _boot(self, worker: Worker) -> None:
        """Start the worker's container after the cold-start delay (its billing starts with the process)."""
        if self._closing.wait(self.faults.cold_start_s):
            return
        with self.lock:
            endpoint = self.endpoints.get(worker.endpoint_id)
            template = self.templates.get(endpoint.template_id) if endpoint else None
            if endpoint is None or template is None or worker.ended is not None:
                worker.ended = worker.ended or time.time()
                return
            home = self.workdir / "serverless" / worker.id
            home.mkdir(parents=True, exist_ok=True)
            env = container_env_base(home, self.workdir / "bin", self.extra_env)
            env.update({name: _resolve_secrets(value, self.secrets) for name, value in template.env.items()})
            env.update(self._webhooks(endpoint.id, worker.id))
            log_path = self.workdir / "logs" / f"{worker.id}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("ab") as log:
                log.write(f"[emulator] serverless worker {worker.id} of endpoint {endpoint.id}\n".encode())
                log.flush()
                worker.process = subprocess.Popen(
                    start_argv_list(template.start_cmd),
                    cwd=home,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            REAPER.watch(worker.process.pid)
            worker.created = time.time()  # billing starts when the container does
            worker.idle_since = time.monotonic()

    def _webhooks(self, endpoint_id: str, worker_id: str) -> dict[str, str]:
        base = f"{self.api_base_url}/v2/{endpoint_id}"
        return {
            "RUNPOD_POD_ID": worker_id,
            "RUNPOD_ENDPOINT_ID": endpoint_id,
            "RUNPOD_AI_API_KEY": f"worker-{worker_id}",
            "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$ID?gpu=emulated",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID?gpu=emulated",
            "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID?gpu=emulated",
            "RUNPOD_WEBHOOK_PING": f"{base}/ping/$RUNPOD_POD_ID?gpu=emulated",
            "RUNPOD_PING_INTERVAL": "2000",
            # No GPU here: the SDK's GPU and system fitness checks would refuse the worker.
            "RUNPOD_SKIP_GPU_CHECK": "true",
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
        }

    def _end_worker(self, worker: Worker) -> None:
        with self.lock:
            if worker.ended is not None:
                return
            worker.ended = time.time()
            process = worker.process
            request = self.requests.get(worker.request_id or "")
            if request is not None and request.status not in FINAL:
                request.error = "the worker ended while running the request"
                self._finish(request, "FAILED")
            worker.request_id = None
            self.changed.notify_all()
        if process is not None:
            kill(process, self.stop_grace_s)
            REAPER.release(process.pid)

    def shutdown(self) -> None:
        self._closing.set()
        with self.lock:
            workers = [w for w in self.workers.values() if w.ended is None]
        for worker in workers:
            self._end_worker(worker)


_SECRET_REF = re.compile(r"\{\{\s*RUNPOD_SECRET_([A-Za-z0-9_]+)\s*\}\}")


def _resolve_secrets(value: str, known: Mapping[str, str]) -> str:
    """RunPod's secret references resolved as a worker starts; an unknown one stays as written."""
    return _SECRET_REF.sub(lambda m: known.get(m.group(1), m.group(0)), value)


def start_argv_list(start_cmd: list[str]) -> list[str]:
    """A template's ``dockerStartCmd`` as argv (one string is run by bash, as a pod's start command)."""
    if len(start_cmd) == 1:
        return start_argv(start_cmd[0])
    return list(start_cmd) if start_cmd else start_argv("")
