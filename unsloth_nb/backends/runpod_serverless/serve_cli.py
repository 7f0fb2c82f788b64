"""``unsloth-nb serve ID [--adapter REPO] [--idle-timeout S] [--yes] | --stop``."""

from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_CANCELLED = 0, 130


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="unsloth-nb serve", description="Serve a job's adapter on a RunPod serverless vLLM endpoint."
    )
    parser.add_argument("job_id")
    parser.add_argument("--stop", action="store_true", help="delete the job's serving endpoint")
    parser.add_argument("--adapter", help="Hub repo of the adapter (default: the job's hub.repo_id)")
    parser.add_argument("--idle-timeout", type=int, default=None, help="seconds a worker stays up after a request (billed)")
    parser.add_argument("--yes", action="store_true", help="do not ask before creating the endpoint")
    args = parser.parse_args(argv)

    from unsloth_nb.api import load_job
    from unsloth_nb.backends.runpod_serverless.serve import DEFAULT_IDLE_TIMEOUT_S, serve, serve_plan, stop_serving
    from unsloth_nb.planning.gpu_catalog import GPU_CATALOG

    job = load_job(args.job_id, reattach=False)
    if args.stop:
        print(f"endpoint of {job.id} deleted" if stop_serving(job) else f"{job.id} is not served")
        return EXIT_OK
    idle = args.idle_timeout or DEFAULT_IDLE_TIMEOUT_S
    price = next((g.secure_usd_per_hour for g in GPU_CATALOG if g.gpu_type_id == "NVIDIA RTX A5000"), None)
    print(serve_plan(job, idle, price))
    hour = price or 0.0
    ask = not args.yes and hour > job.config.runpod.confirm_above_usd
    if ask and (
        not sys.stdin.isatty() or input(f"An hour of use costs ~${hour:.2f}. Create the endpoint? [y/N] ").strip().lower() != "y"
    ):
        print("nothing was created")
        return EXIT_CANCELLED
    serve(job, adapter=args.adapter, idle_timeout=idle)
    return EXIT_OK
