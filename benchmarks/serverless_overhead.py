"""Pods against serverless on the emulator, side by side: time to the first loss, paid seconds outside training, bytes sent.

The same tiny-model job runs twice against the RunPod emulator with the same injected latencies: every
control-plane call 100 ms slower, and the same "image pull" (a pod's ``start_delay``, a serverless worker's
``cold_start_s``). Once as ``placement: runpod`` (a pod, its stage 0 and worker), once as
``placement: serverless`` (a template, an endpoint, one request through the SDK's worker loop). Measured:

- submit -> first loss: the job's ``created`` event to its first loss event, as the job's log received them;
- paid seconds outside training: the emulator's bill (pod seconds, or every worker's seconds) minus the span
  from the job's ``training`` state to its ``saving`` state;
- what was sent to start the job: the pod create request, or the template + endpoint + /run bodies.

    .venv/bin/python benchmarks/serverless_overhead.py           # 40 steps
    .venv/bin/python benchmarks/serverless_overhead.py --quick   # 10 steps

The emulator's workers share this environment, so neither path installs anything here: on RunPod both pay
the same install (about 75 s on the default image, benchmarks/pod_install_time.py) on every cold start.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import API_LATENCY_S, Row, emulated_runpod, finish, offline, overhead_job, print_table, scratch_dir, tiny_model


def first(job: Any, kind: str, **match: Any) -> float | None:
    for event in job.events():
        if event.kind == kind and all(event.data.get(k) == v for k, v in match.items()):
            return float(event.time)
    return None


def first_loss(job: Any) -> float | None:
    return next((float(e.time) for e in job.events() if e.kind == "metrics" and "loss" in e.data), None)


def run(model: Path, steps: int, image_pull_s: float, placement: str) -> dict[str, Any]:
    import unsloth_nb

    with emulated_runpod(f"emulator-{placement}", image_pull_s=image_pull_s, api_latency_s=API_LATENCY_S) as emulator:
        job = unsloth_nb.train(overhead_job(model, steps, placement))
        job.wait(timeout=1800)
        if job.state != "succeeded":
            raise SystemExit(f"the {placement} job ended {job.state}: {job.error}")
        if placement == "runpod":
            billed = emulator.ledger.pod_seconds(job.record.pod_id or "")
            sent = sum(c.bytes for c in emulator.api_calls if "podFindAndDeployOnDemand" in c.operations)
            left = len(emulator.ledger.running_pods())
        else:
            billed = sum(span.seconds() for span in emulator.serverless.spans())
            sent = sum(c.bytes for c in emulator.api_calls if c.api == "rest") + sum(
                b for _t, route, b in emulator._jobs.calls if route == "run"
            )
            left = len(emulator.serverless.active_workers())
        created = first(job, "status", state="created") or 0.0
        training, saving = first(job, "status", state="training"), first(job, "status", state="saving")
        loss = first_loss(job)
        train_span = (saving - training) if training and saving else 0.0
        return {
            "first_loss": (loss - created) if loss else float("nan"),
            "billed": billed,
            "outside": billed - train_span,
            "sent": sent,
            "left": left,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 steps")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--image-pull", type=float, default=3.0, help="emulated image pull / cold start, seconds")
    args = parser.parse_args(argv)
    steps = 10 if args.quick else args.steps
    offline()
    model = tiny_model(scratch_dir("tiny-llama"), trains_here=False)
    pod = run(model, steps, args.image_pull, "runpod")
    sls = run(model, steps, args.image_pull, "serverless")
    rows = [
        Row(["submit -> first loss", f"{pod['first_loss']:.1f} s", f"{sls['first_loss']:.1f} s"]),
        Row(["paid seconds (emulator's bill)", f"{pod['billed']:.1f} s", f"{sls['billed']:.1f} s"]),
        Row(["paid seconds outside training", f"{pod['outside']:.1f} s", f"{sls['outside']:.1f} s"]),
        Row(
            [
                "API bytes to start (pod: create request; its package then goes over the worker port)",
                f"{pod['sent']:,}",
                f"{sls['sent']:,}",
            ]
        ),
        Row(["left billing after the job", str(pod["left"]), str(sls["left"])], ok=pod["left"] == 0 and sls["left"] == 0),
    ]
    title = f"{steps} steps, {API_LATENCY_S * 1000:.0f} ms per API call, {args.image_pull:.1f} s image pull / cold start"
    print_table(title, ("figure", "pod", "serverless"), rows)
    return finish(rows, strict=True)


if __name__ == "__main__":
    raise SystemExit(main())
