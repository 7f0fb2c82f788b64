"""What a RunPod job costs beyond its training: API calls, event delay, paid idle seconds, bytes moved.

One tiny-model job with ``placement: runpod`` runs against the RunPod emulator (the real
``runpod`` SDK over loopback GraphQL; the pod is a local process running the real
bootstrap and worker) with 100 ms added to every API call. A byte-counting relay sits
in front of the emulator's pod proxy, so every byte between this client and the pod's
worker is counted. Measured:

- control-plane (GraphQL) calls this client makes per job-minute while the job trains,
  counted by the emulator (the pod's own calls are shown apart);
- event latency pod -> client: when the job's log here received a metrics/progress
  event minus the time the worker stamped on it (one machine, one clock);
- paid pod-seconds outside training: the emulator's bill for the pod minus the worker's
  own training span minus the emulated image pull, with where the rest went;
- bytes uploaded and downloaded against the dataset file and the adapter;
- the create request's size in bytes, as the emulator received it (the boot script and
  the job token are in it; the package follows over the worker port);
- worker ready -> first loss event on the client (the pod's stage 0 receives the package
  before "worker ready", so this is the time from a usable worker to training).

    .venv/bin/python benchmarks/runpod_overhead.py           # 400 steps
    .venv/bin/python benchmarks/runpod_overhead.py --quick   # 10 steps (CI smoke)
    .venv/bin/python benchmarks/runpod_overhead.py --sources 100 [--only-sources]
    .venv/bin/python benchmarks/runpod_overhead.py --quick --serverless   # + pods against serverless

``--serverless`` then runs the same job as a pod and as a serverless request with the same injected
latencies, side by side (submit -> first loss, paid seconds outside training, bytes to start, left billing;
the measurement itself is benchmarks/serverless_overhead.py).

``--sources MB`` adds a second table: client bytes up for a whole pod job (2 steps) whose
dataset is a local file of MB megabytes, then the same bytes on the loopback Hub, then
the same on the loopback S3 server, each counted by the relay in front of the pod proxy
in the job's upload phase (the dataset or its reference, and the job request with its config
and secrets), and over the whole job (the pod's package, event polling and the adapter
requests included). A remote source keeps the upload phase within 8 kB: the pod reads the rows itself.

Targets: <= 6 control-plane calls per job-minute while training; event latency p99 <= 1 s;
<= 60 paid pod-seconds outside training beyond the image pull; create request <= 8 KB. Here the pod's "boot"
skips pip (the emulator's pods share this environment) and loads on 2 busy CPU cores;
on a real pod the install and a GPU model load replace those seconds.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    API_LATENCY_S,
    DEMO_DATASET,
    Row,
    emulated_runpod,
    finish,
    offline,
    overhead_job,
    percentile,
    print_table,
    scratch_dir,
    tiny_model,
)

TARGET_CALLS_PER_MINUTE = 6.0
TARGET_LATENCY_P99_S = 1.0
TARGET_IDLE_POD_SECONDS = 60.0
TARGET_CREATE_BYTES = 8 * 1024
#: The upload phase's bytes up (the dataset, or a reference to it, and the job request) for a remote source.
TARGET_REMOTE_UPLOAD_BYTES = 8 * 1024
CREATE_OPERATIONS = ("podFindAndDeployOnDemand", "podRentInterruptable")


class CountingRelay:
    """A loopback TCP relay that counts the bytes going each way (client -> pod is "up")."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.up = 0
        self.down = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()

    @property
    def template(self) -> str:
        """The pod proxy template that sends the client's pod traffic through this relay."""
        return f"http://127.0.0.1:{self.port}/{{pod_id}}-{{port}}"

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return self.up, self.down

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self.connections += 1
            for source, target, direction in ((client, upstream, "up"), (upstream, client, "down")):
                threading.Thread(target=self._pump, args=(source, target, direction), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, direction: str) -> None:
        try:
            while data := source.recv(1 << 16):
                target.sendall(data)
                with self._lock:
                    setattr(self, direction, getattr(self, direction) + len(data))
        except OSError:
            pass
        finally:
            for sock, how in ((target, socket.SHUT_WR), (source, socket.SHUT_RD)):
                try:
                    sock.shutdown(how)
                except OSError:
                    pass


@dataclass
class Watch:
    """Subscribed to the job's log: when each state began, and the relay's byte counts at that moment.

    Times are the events' own stamps: the job's log stamps an event when this client
    emits it, which for an event copied from the pod is the moment it arrived here.
    """

    relay: CountingRelay
    states: list[tuple[str, float, int, int]] = field(default_factory=list)  # (state, time, up, down)

    def __call__(self, event: Any) -> None:
        if event.kind == "status":
            up, down = self.relay.counts()
            self.states.append((str(event.data.get("state")), event.time, up, down))

    def spans(self) -> list[tuple[str, float, int, int]]:
        """(state, seconds in it, bytes up, bytes down) for each state but the last, in order."""
        return [
            (state, t1 - t0, u1 - u0, d1 - d0)
            for (state, t0, u0, d0), (_, t1, u1, d1) in zip(self.states, self.states[1:], strict=False)
        ]

    def first(self, state: str) -> float:
        return next(t for s, t, _, _ in self.states if s == state)


def step_events(events: Any) -> dict[tuple[str, int], float]:
    """(kind, step) -> time, for training-loss metrics and progress events."""
    found: dict[tuple[str, int], float] = {}
    for event in events:
        if event.kind in ("metrics", "progress") and "step" in event.data and (event.kind == "progress" or "loss" in event.data):
            found.setdefault((event.kind, int(event.data["step"])), event.time)
    return found


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_job(model: Path, steps: int, image_pull_s: float) -> dict[str, Any]:
    import unsloth_nb
    from unsloth_nb.jobrun.events import read_events_file
    from unsloth_nb.worker.protocol import pack_dataset

    pod_env = {"OMP_WAIT_POLICY": os.environ["OMP_WAIT_POLICY"]} if "OMP_WAIT_POLICY" in os.environ else {}
    with emulated_runpod("runpod-emulator", image_pull_s=image_pull_s, api_latency_s=API_LATENCY_S, pod_env=pod_env) as emulator:
        workdir = emulator.workdir
        relay = CountingRelay(emulator.proxy_port)
        os.environ["UNSLOTH_NB_RUNPOD_PROXY_TEMPLATE"] = relay.template
        config = overhead_job(model, steps, "runpod")
        job = unsloth_nb.train(config)
        watch = Watch(relay)
        job.log.subscribe(watch, replay=True)
        job.wait(timeout=1800)
        pod_id = job.record.pod_id
        assert pod_id, "the job rented no pod"
        billed = emulator.ledger.pod_seconds(pod_id)
        still_billing = emulator.ledger.running_pods()
        calls = emulator.api_calls
        remote = list(read_events_file(workdir / "pods" / pod_id / "unsloth-nb-worker" / "events.jsonl"))
        relay.close()
        up, down = relay.counts()
        artifact_bytes = sum(int(e.data.get("bytes") or 0) for e in remote if e.kind == "artifact")
        packed = len(pack_dataset(job_dataset(config)))
        adapter_here = folder_bytes(job.adapter_path) if job.adapter_path else 0
        return {
            "job": job,
            "watch": watch,
            "billed": billed,
            "still_billing": still_billing,
            "calls": calls,
            "remote": remote,
            "up": up,
            "down": down,
            "connections": relay.connections,
            "artifact_bytes": artifact_bytes,
            "adapter_here": adapter_here,
            "packed": packed,
        }


def source_bytes_up(model: Path, megabytes: float) -> list[Row]:
    """Whole-job client bytes up for the same rows as a local file, a Hub dataset and an S3 object."""
    import huggingface_hub.constants
    from dataset_bytes_up import build_rows

    import unsloth_nb
    from unsloth_nb.testing.hub_emulator import LoopbackHub
    from unsloth_nb.testing.s3_emulator import LoopbackS3

    scratch = scratch_dir("bytes-up")
    scratch.mkdir(parents=True, exist_ok=True)
    local = scratch / f"qa-{megabytes:g}mb.jsonl"
    if not local.exists():
        build_rows(local, megabytes)
    data = local.read_bytes()
    os.environ["UNSLOTH_NB_DATA_CACHE"] = str(scratch / "data-cache")
    os.environ["HF_HUB_CACHE"] = str(scratch / "hf-cache")
    train = {"max_steps": 2, "batch_size": 2, "grad_accum": 1, "max_seq_length": 256, "warmup_steps": 0}
    results: list[tuple[str, int, int, float]] = []
    with LoopbackHub() as hub, LoopbackS3() as s3, emulated_runpod("bytes-up-emulator") as emulator:
        relay = CountingRelay(emulator.proxy_port)
        os.environ.update(
            {"UNSLOTH_NB_RUNPOD_PROXY_TEMPLATE": relay.template, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", **s3.env}
        )
        huggingface_hub.constants.HF_HUB_OFFLINE = False  # read at import
        hub.add_dataset("bench/qa", {"data/train-00000-of-00001.jsonl": data})
        s3.put("bench", "qa.jsonl", data)
        for label, dataset in (
            ("local file", str(local)),
            ("Hub dataset id", "bench/qa"),
            ("s3:// object", "s3://bench/qa.jsonl"),
        ):
            before, _ = relay.counts()
            watch = Watch(relay)
            job = unsloth_nb.train(model=str(model), dataset=dataset, placement="runpod", train=train, lora={"r": 8, "alpha": 8})
            job.log.subscribe(watch, replay=True)
            job.wait(timeout=3600)
            after, _ = relay.counts()
            uploading = sum(u for state, _, u, _ in watch.spans() if state == "uploading")
            results.append((label, after - before, uploading, 0.0))
        relay.close()
    rows = []
    for label, up, uploading, _ in results:
        remote = label != "local file"
        rows.append(
            Row(
                [
                    f"{label} ({len(data) / 1e6:.1f} MB of rows)",
                    f"{uploading:,} B (whole job {up:,} B)",
                    f"<= {TARGET_REMOTE_UPLOAD_BYTES:,} B" if remote else "-",
                ],
                ok=not remote or uploading <= TARGET_REMOTE_UPLOAD_BYTES,
            )
        )
    return rows


def job_dataset(config: dict[str, Any]) -> Any:
    """The prepared dataset the client packs and uploads (to compare with what went over the wire)."""
    from unsloth_nb.api import as_config
    from unsloth_nb.data import prepare_dataset

    parsed = as_config(config)
    return prepare_dataset(parsed.dataset, parsed.train.max_seq_length)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 steps (CI smoke)")
    parser.add_argument("--steps", type=int, default=400, help="training steps (default 400)")
    parser.add_argument("--image-pull", type=float, default=3.0, help="emulated image pull, seconds (default 3)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--sources", type=float, default=None, metavar="MB", help="also: bytes up per dataset source")
    parser.add_argument("--only-sources", action="store_true", help="with --sources: skip the main job")
    parser.add_argument("--serverless", action="store_true", help="also: pods against serverless, side by side")
    args = parser.parse_args(argv)
    steps = 10 if args.quick else args.steps
    image_pull = 0.5 if args.quick else args.image_pull

    from unsloth_nb.backends.runpod.api_types import chosen_api

    offline()
    model = tiny_model(scratch_dir("tiny-llama"), trains_here=False)
    source_rows: list[Row] = []
    if args.sources:
        source_rows = print_table(
            "Client bytes up for a pod job (2 steps, emulator) by dataset source",
            ["source", "upload phase bytes up", "target"],
            source_bytes_up(model, args.sources),
        )
        if args.only_sources:
            return finish(source_rows, args.strict)
    result = run_job(model, steps, image_pull)
    job, watch = result["job"], result["watch"]
    if job.state != "succeeded":
        raise SystemExit(f"the RunPod job ended {job.state}: {job.error}")
    if result["still_billing"]:
        raise SystemExit(f"pods still billing after the job: {result['still_billing']}")

    # Control plane while training (the client's window: its 'training' state to 'saving').
    train_from, train_to = watch.first("training"), watch.first("saving")
    client_calls = [c for c in result["calls"] if not c.from_pod]
    in_training = [c for c in client_calls if train_from <= c.time <= train_to]
    minutes = max(train_to - train_from, 1e-9) / 60
    per_minute = len(in_training) / minutes
    by_operation = Counter(op for c in client_calls for op in c.operations or ("?",))
    pod_calls = Counter(op for c in result["calls"] if c.from_pod for op in c.operations or ("?",))

    # Event latency: received here minus stamped on the worker.
    received = step_events(job.events())
    sent = step_events(result["remote"])
    latencies = [received[key] - stamped for key, stamped in sent.items() if key in received]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)

    # Paid seconds outside training: the bill minus the worker's own training span minus the image pull.
    remote_states = {e.data.get("state"): e.time for e in result["remote"] if e.kind == "status"}
    training_s = remote_states["saving"] - remote_states["training"]
    outside = result["billed"] - training_s - image_pull

    # The create request, in bytes as RunPod (here the emulator) received it; and worker ready -> first loss.
    creates = [c.bytes for c in result["calls"] if set(c.operations) & set(CREATE_OPERATIONS)]
    create_bytes = max(creates) if creates else 0
    events = job.events()
    ready_at = next(e.time for e in events if e.kind == "log" and "worker ready" in str(e.data.get("message")))
    first_loss = next(e.time for e in events if e.kind == "metrics" and e.data.get("loss") is not None)

    dataset_file = DEMO_DATASET.stat().st_size
    spans = watch.spans()
    upload_up = sum(u for s, _, u, _ in spans if s == "uploading")
    download_down = sum(d for s, _, _, d in spans if s == "downloading")
    stream_down = sum(d for s, _, _, d in spans if s == "training")

    rows = [
        Row(
            [
                "control-plane calls per job-minute while training",
                f"{per_minute:.1f} ({len(in_training)} in {minutes * 60:.0f} s)",
                f"<= {TARGET_CALLS_PER_MINUTE:g}",
            ],
            ok=per_minute <= TARGET_CALLS_PER_MINUTE,
        ),
        Row(
            [
                "control-plane calls, whole job (client)",
                f"{len(client_calls)}: " + ", ".join(f"{k} {v}" for k, v in sorted(by_operation.items())),
                "-",
            ]
        ),
        Row(
            [
                "control-plane calls, whole job (the pod itself)",
                ", ".join(f"{k} {v}" for k, v in sorted(pod_calls.items())) or "0",
                "-",
            ]
        ),
        Row(
            [
                "event latency pod -> client, p50 / p99",
                f"{p50 * 1000:.0f} / {p99 * 1000:.0f} ms ({len(latencies)} events)",
                f"p99 <= {TARGET_LATENCY_P99_S:g} s",
            ],
            ok=p99 <= TARGET_LATENCY_P99_S,
        ),
        Row(
            [
                "paid pod-seconds outside training, beyond the image pull",
                f"{outside:.1f} s (billed {result['billed']:.1f} s = training {training_s:.1f} + image pull {image_pull:g} + {outside:.1f})",
                f"<= {TARGET_IDLE_POD_SECONDS:g} s",
            ],
            ok=outside <= TARGET_IDLE_POD_SECONDS,
        ),
        Row(
            [
                "create request, bytes as sent",
                f"{create_bytes:,} B ({len(creates)} create call{'s' if len(creates) != 1 else ''})",
                f"<= {TARGET_CREATE_BYTES:,} B",
            ],
            ok=0 < create_bytes <= TARGET_CREATE_BYTES,
        ),
        Row(["worker ready -> first loss event on the client", f"{first_loss - ready_at:.1f} s", "-"]),
        Row(
            [
                "bytes up (client -> pod), whole job",
                f"{result['up'] / 1e3:.1f} kB; upload phase {upload_up / 1e3:.1f} kB vs dataset file {dataset_file / 1e3:.1f} kB "
                f"(packed {result['packed'] / 1e3:.1f} kB): {upload_up / dataset_file:.2f}x",
                "-",
            ]
        ),
        Row(
            [
                "bytes down (pod -> client), whole job",
                f"{result['down'] / 1e3:.1f} kB; download phase {download_down / 1e3:.1f} kB vs adapter {result['adapter_here'] / 1e3:.1f} kB: "
                f"{download_down / max(result['adapter_here'], 1):.2f}x; events while training {stream_down / 1e3:.1f} kB",
                "-",
            ]
        ),
    ]
    where = ", ".join(f"{state} {seconds:.1f} s" for state, seconds, _, _ in spans if state not in ("created", "planning"))
    rows = print_table(
        f"RunPod job on the emulator ({'REST v2' if chosen_api() == 'rest' else 'GraphQL'} API; "
        f"UNSLOTH_NB_RUNPOD_API picks it), +{API_LATENCY_S * 1000:.0f} ms per API call, tiny model, {steps} steps",
        ["figure", "measured", "target"],
        rows,
        note=(
            f"Client-side time per job state: {where}. "
            f"{result['connections']} connections through the pod proxy. Worker training span {training_s:.1f} s."
        ),
    )
    code = finish([*source_rows, *rows], args.strict)
    if args.serverless:
        import serverless_overhead

        code = max(code, serverless_overhead.main(["--steps", str(steps), "--image-pull", str(args.image_pull)]))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
