"""``unsloth-nb serve ID [--adapter REPO] [--idle-timeout S] [--yes] | --stop``."""

from __future__ import annotations

import argparse

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
    from unsloth_nb.backends.runpod_serverless.serve import DEFAULT_IDLE_TIMEOUT_S, serve, stop_serving
    from unsloth_nb.errors import JobCancelledError

    job = load_job(args.job_id, reattach=False)
    if args.stop:
        print(f"endpoint of {job.id} deleted" if stop_serving(job) else f"{job.id} is not served")
        return EXIT_OK
    try:
        serve(job, adapter=args.adapter, idle_timeout=args.idle_timeout or DEFAULT_IDLE_TIMEOUT_S, yes=args.yes)
    except JobCancelledError as exc:
        print(exc)
        return EXIT_CANCELLED
    return EXIT_OK
