"""One real RunPod job, end to end, under a hard money and time cap. For a maintainer with an account; never in CI.

    RUNPOD_API_KEY=... python scripts/runpod_smoke.py                  # cap: $0.25 and 10 minutes
    RUNPOD_API_KEY=... python scripts/runpod_smoke.py --max-cost 0.40 --max-minutes 15

It rents the cheapest GPU that RunPod has in stock and that fits the model (live
prices, SECURE cloud unless --allow-community), trains the model for 10 steps on the
bundled Super Bowl LIX rows, downloads the adapter, checks that RunPod no longer
lists the pod, and prints how long each phase took and what the job cost.

The cap is not optional: the job runs with ``runpod.max_cost_usd`` and
``runpod.max_runtime`` at 80 % of it (the backend then stops training, keeps what was
saved and terminates the pod), and a watchdog here ends the pod at the full cap. A
cap of zero, a negative one or one above $2 / 60 minutes is refused. Nothing runs
without RUNPOD_API_KEY.

``--model`` defaults to ``HuggingFaceTB/SmolLM2-135M-Instruct`` (the pod downloads it
from the Hub; about 270 MB). Tests point RUNPOD_API_BASE_URL and the pod proxy at the
RunPod emulator and pass a local tiny model instead.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import threading
import time
from typing import Any

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_MAX_COST = 0.25
DEFAULT_MAX_MINUTES = 10.0
CEILING_COST = 2.0
CEILING_MINUTES = 60.0
#: The backend's own limits sit below the hard cap, so stopping and terminating fit inside it.
BACKEND_SHARE = 0.8
STEPS = 10


class Refused(Exception):
    """The script will not rent: the message says what to change."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-cost", type=float, default=DEFAULT_MAX_COST, help=f"hard cap in USD (default {DEFAULT_MAX_COST})")
    parser.add_argument(
        "--max-minutes", type=float, default=DEFAULT_MAX_MINUTES, help=f"hard cap in minutes (default {DEFAULT_MAX_MINUTES:g})"
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"model to train (default {DEFAULT_MODEL})")
    parser.add_argument("--allow-community", action="store_true", help="also rent from the COMMUNITY cloud")
    parser.add_argument("--output-dir", help="where the adapter goes (default: the job's folder)")
    return parser.parse_args(argv)


def check_caps(args: argparse.Namespace) -> None:
    if not args.max_cost > 0 or not args.max_minutes > 0:
        raise Refused("a positive --max-cost and --max-minutes are required; this script never rents without a cap")
    if args.max_cost > CEILING_COST or args.max_minutes > CEILING_MINUTES:
        raise Refused(
            f"--max-cost {args.max_cost:g} / --max-minutes {args.max_minutes:g} is above what a smoke test needs "
            f"(at most ${CEILING_COST:g} and {CEILING_MINUTES:g} minutes)"
        )
    if not os.environ.get("RUNPOD_API_KEY", "").strip():
        raise Refused("RUNPOD_API_KEY is not set; create a key at https://www.runpod.io/console/user/settings")


def cheapest_gpus(client: Any, memory_gb: float, allow_community: bool, count: int = 3) -> list[str]:
    """The ``count`` cheapest GPU types in stock now with at least ``memory_gb``, cheapest first."""
    clouds = ["SECURE", "COMMUNITY"] if allow_community else ["SECURE"]
    priced: list[tuple[float, str]] = []
    for gpu in client.gpu_types():
        if gpu.memory_gb < memory_gb:
            continue
        for cloud in clouds:
            price = gpu.secure_usd_per_hour if cloud == "SECURE" else gpu.community_usd_per_hour
            if price and gpu.stock(cloud) not in ("None", ""):
                priced.append((price, gpu.id))
    chosen: list[str] = []
    for _, gpu_id in sorted(priced):
        if gpu_id not in chosen:
            chosen.append(gpu_id)
    return chosen[:count]


def phase_seconds(job: Any) -> list[tuple[str, float]]:
    """(state, seconds in it) in order, from the job's status events."""
    changes = [(e.data.get("state"), e.time) for e in job.events() if e.kind == "status"]
    return [(str(state), t1 - t0) for (state, t0), (_, t1) in itertools.pairwise(changes)]


def run(args: argparse.Namespace) -> int:
    import unsloth_nb
    from unsloth_nb.backends.runpod.client import RunPodClient
    from unsloth_nb.demo import demo_dataset_path
    from unsloth_nb.planning.memory import memory_needed_gb
    from unsloth_nb.planning.model_size import estimate_model_size

    started = time.monotonic()
    client = RunPodClient()
    size = estimate_model_size(args.model)
    need = memory_needed_gb(size.params, False, 512, 2)
    gpus = cheapest_gpus(client, max(need, 8.0), args.allow_community)
    if not gpus:
        raise Refused(f"RunPod has no GPU with {need:.0f} GB in stock right now; try again later or --allow-community")
    print(f"cheapest GPUs in stock: {', '.join(gpus)}", flush=True)
    config = {
        "model": {"name": args.model, "load_in_4bit": False},
        "dataset": {"path": str(demo_dataset_path())},
        "lora": {"r": 8, "alpha": 8},
        "train": {"max_steps": STEPS, "batch_size": 2, "grad_accum": 1, "max_seq_length": 512, "logging_steps": 1},
        "save": {"output_dir": args.output_dir},
        "placement": "runpod",
        "runpod": {
            "gpus": gpus,
            "allow_community": args.allow_community,
            "max_cost_usd": round(args.max_cost * BACKEND_SHARE, 4),
            "max_runtime": max(60.0, args.max_minutes * 60 * BACKEND_SHARE),
            "ready_timeout": max(10.0, args.max_minutes * 60 * 0.6),
            "confirm_above_usd": args.max_cost,
        },
    }
    job = unsloth_nb.train(config)
    watchdog = threading.Timer(args.max_minutes * 60 - (time.monotonic() - started), _hard_stop, args=(job,))
    watchdog.daemon = True
    watchdog.start()
    try:
        job.wait()
    finally:
        watchdog.cancel()
    pod_id = job.record.pod_id
    gone = pod_id is not None and client.get_pod(pod_id) is None
    costs = [e.data for e in job.events() if e.kind == "cost"]
    spent = float(costs[-1].get("usd_so_far") or 0.0) if costs else 0.0
    print(f"\njob {job.id}: {job.state}" + (f" ({job.error})" if job.error else ""))
    for state, seconds in phase_seconds(job):
        print(f"  {state:12} {seconds:7.1f} s")
    print(f"  total        {time.monotonic() - started:7.1f} s")
    print(f"cost: ${spent:.4f} (cap ${args.max_cost:.2f}); GPU {job.record.gpu}; pod {pod_id}")
    adapter = job.adapter_path
    print(f"adapter: {adapter if adapter and (adapter / 'adapter_config.json').is_file() else 'NOT downloaded'}")
    print(f"pod terminated (RunPod no longer lists it): {'yes' if gone else 'NO: check https://www.runpod.io/console/pods'}")
    ok = job.state == "succeeded" and gone and adapter is not None
    return 0 if ok else 1


def _hard_stop(job: Any) -> None:
    print("hard cap reached: stopping the job and ending its pod", file=sys.stderr, flush=True)
    job.cancel("the smoke test's hard cap was reached")


def main(argv: list[str] | None = None) -> int:
    from unsloth_nb.errors import UnslothNbError

    args = parse_args(argv)
    try:
        check_caps(args)
        return run(args)
    except (Refused, UnslothNbError) as exc:
        print(f"runpod_smoke: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
