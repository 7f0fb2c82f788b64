"""``unsloth-nb runpod gpus|list|stop|terminate|cleanup|endpoints|volume``: the account's GPUs and pods from a terminal.

``runpod train`` and ``runpod emulator`` are dispatched by ``unsloth_nb.cli`` before
this module is reached. Exit codes: 0 done, 1 RunPod or a pod failed, 2 bad input
(unknown command, missing or refused key, nothing confirmed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from unsloth_nb.errors import UnslothNbError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

USAGE = """usage: unsloth-nb runpod <command> [flags]

commands:
  gpus                 GPU types with memory, secure/community $/h and stock
  list                 pods of the account, ours (unsloth-nb-*) first
  stop POD_ID          stop a pod (GPU billing ends; its disk still bills)
  terminate POD_ID...  terminate pods and wait until RunPod no longer lists them
  cleanup [--yes]      terminate every unsloth-nb-* pod that no live job on this machine owns
                       (and delete unsloth-nb serverless endpoints no live job here uses)
  endpoints list|delete  unsloth-nb's serverless endpoints
  volume list|create|ls|upload  network volumes (upload: multipart, resumable, through the volume's S3 API)
  train [flags]        unsloth-nb train on a RunPod pod (same flags as train)
  emulator             run a RunPod emulator on 127.0.0.1 (no account needed)

RUNPOD_API_KEY is needed for all but emulator; without it, gpus shows the offline catalogue
(indicative prices, no stock).
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return EXIT_OK if args else EXIT_BAD_INPUT
    commands = {
        "gpus": cmd_gpus,
        "list": cmd_list,
        "ls": cmd_list,
        "stop": cmd_stop,
        "terminate": cmd_terminate,
        "cleanup": cmd_cleanup,
        "endpoints": cmd_endpoints,
        "volume": cmd_volume,
    }
    command = commands.get(args[0])
    if command is None:
        print(f"unsloth-nb runpod: unknown command {args[0]!r}\n\n{USAGE}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return command(args[1:])
    except _HelpShown:
        return EXIT_OK
    except UnslothNbError as exc:
        print(f"unsloth-nb runpod: {exc}", file=sys.stderr)
        return EXIT_FAILED if exc.exit_code == EXIT_FAILED else EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("unsloth-nb runpod: interrupted", file=sys.stderr)
        return EXIT_FAILED


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so ``main`` owns the exit code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _BadArguments(f"{self.prog}: {message}")


class _BadArguments(UnslothNbError):
    exit_code = EXIT_BAD_INPUT


def _parse(prog: str, argv: list[str], configure: Any = None) -> argparse.Namespace:
    parser = _Parser(prog=f"unsloth-nb runpod {prog}", add_help=True)
    if configure is not None:
        configure(parser)
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:  # --help
        raise _HelpShown() from exc


class _HelpShown(Exception):
    """argparse printed --help; nothing else to do."""


def _client() -> Any:
    from unsloth_nb.backends.runpod.client import RunPodClient

    return RunPodClient()


# ---------------------------------------------------------------------- gpus
def cmd_gpus(argv: list[str]) -> int:
    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="one JSON object per GPU type")
        parser.add_argument("--min-memory", type=float, default=0.0, help="only GPUs with at least this many GB")

    args = _parse("gpus", argv, configure)
    from unsloth_nb.errors import MissingSecretError

    try:
        live = _client().gpu_types()
    except MissingSecretError:
        return _catalogue_gpus(args.json, args.min_memory)
    gpus = sorted(live, key=lambda g: (g.memory_gb, g.secure_usd_per_hour or 1e9, g.id))
    gpus = [g for g in gpus if g.memory_gb >= args.min_memory]
    if args.json:
        for gpu in gpus:
            print(json.dumps(gpu.__dict__))
        return EXIT_OK
    rows = [
        [gpu.id, f"{gpu.memory_gb} GB", _usd(gpu.secure_usd_per_hour), _usd(gpu.community_usd_per_hour), _stock(gpu)]
        for gpu in gpus
    ]
    print(_table(["GPU TYPE ID", "MEMORY", "SECURE $/H", "COMMUNITY $/H", "STOCK (SECURE/COMMUNITY)"], rows))
    print(
        "Live prices and stock from RunPod. STOCK is RunPod's stockStatus per cloud (High, Medium, Low, None = "
        "none free now); '-' means the GPU is not offered in that cloud.",
        file=sys.stderr,
    )
    return EXIT_OK


def _catalogue_gpus(as_json: bool, min_memory: float) -> int:
    """Without a key: the planner's offline catalogue, said to be indicative, with no stock."""
    from unsloth_nb.planning.gpu_catalog import GPU_CATALOG

    gpus = sorted(GPU_CATALOG, key=lambda g: (g.memory_gb, g.secure_usd_per_hour or 1e9, g.gpu_type_id))
    gpus = [g for g in gpus if g.memory_gb >= min_memory]
    if as_json:
        for gpu in gpus:
            print(
                json.dumps(
                    {
                        "id": gpu.gpu_type_id,
                        "display_name": gpu.display_name,
                        "memory_gb": gpu.memory_gb,
                        "secure_usd_per_hour": gpu.secure_usd_per_hour,
                        "community_usd_per_hour": gpu.community_usd_per_hour,
                        "source": "catalogue",
                    }
                )
            )
        return EXIT_OK
    rows = [
        [gpu.gpu_type_id, f"{gpu.memory_gb} GB", _usd(gpu.secure_usd_per_hour), _usd(gpu.community_usd_per_hour), "unknown"]
        for gpu in gpus
    ]
    print(_table(["GPU TYPE ID", "MEMORY", "SECURE $/H", "COMMUNITY $/H", "STOCK"], rows))
    print(
        "RUNPOD_API_KEY is not set: this is the offline catalogue (unsloth_nb/planning/gpu_catalog.py). Prices are "
        "indicative (late 2026) and stock is unknown; '-' means the GPU is not usually offered in that cloud. "
        "Set RUNPOD_API_KEY for live prices and stock.",
        file=sys.stderr,
    )
    return EXIT_OK


def _stock(gpu: Any) -> str:
    secure = gpu.secure_stock if gpu.secure_usd_per_hour is not None else "-"
    community = gpu.community_stock if gpu.community_usd_per_hour is not None else "-"
    return f"{secure}/{community}"


# ---------------------------------------------------------------------- list
def cmd_list(argv: list[str]) -> int:
    from unsloth_nb.backends.runpod.pods import POD_PREFIX, job_id_of

    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="one JSON object per pod")
        parser.add_argument("--ours", action="store_true", help="only unsloth-nb-* pods")

    args = _parse("list", argv, configure)
    pods = _client().list_pods()
    pods.sort(key=lambda p: (not p.name.startswith(POD_PREFIX), p.name, p.id))
    if args.ours:
        pods = [p for p in pods if p.name.startswith(POD_PREFIX)]
    jobs = _job_states()
    if args.json:
        for pod in pods:
            job_id = job_id_of(pod.name)
            print(
                json.dumps(
                    {
                        "id": pod.id,
                        "name": pod.name,
                        "status": pod.desired_status,
                        "gpu": pod.gpu_label,
                        "gpu_count": pod.gpu_count,
                        "uptime_seconds": pod.uptime_seconds,
                        "usd_per_hour": pod.cost_per_hr,
                        "job_id": job_id,
                        "job_state": jobs.get(job_id or "", jobs.get(pod.id)),
                    }
                )
            )
        return EXIT_OK
    if not pods:
        print("no pods")
        return EXIT_OK
    rows = []
    for pod in pods:
        job_id = job_id_of(pod.name)
        job = f"{job_id} ({jobs.get(job_id or '', jobs.get(pod.id, 'no record here'))})" if job_id else "-"
        status = pod.desired_status if pod.runtime_up or not pod.running else "STARTING"
        gpu = f"{pod.gpu_count}x {pod.gpu_label}" if pod.gpu_count > 1 else pod.gpu_label
        rows.append([pod.id, pod.name, status, gpu, _duration(pod.uptime_seconds), _usd(pod.cost_per_hr), job])
    print(_table(["POD ID", "NAME", "STATUS", "GPU", "UPTIME", "$/H", "JOB"], rows))
    return EXIT_OK


def _job_states() -> dict[str, str]:
    """job id and pod id -> the job's state, from this machine's job folders."""
    from unsloth_nb.jobrun.store import list_jobs

    states: dict[str, str] = {}
    for record in list_jobs():
        state = record.state_label()
        states[record.id] = state
        if record.pod_id:
            states[record.pod_id] = state
    return states


# ---------------------------------------------------------------------- stop / terminate
def cmd_stop(argv: list[str]) -> int:
    args = _parse("stop", argv, lambda p: p.add_argument("pod_id", nargs="+", help="pod id(s) from `runpod list`"))
    client = _client()
    for pod_id in args.pod_id:
        client.stop_pod(pod_id)
        print(f"pod {pod_id} stopped (GPU billing ended; its disk still bills until you terminate it)")
    return EXIT_OK


def cmd_terminate(argv: list[str]) -> int:
    args = _parse("terminate", argv, lambda p: p.add_argument("pod_id", nargs="+", help="pod id(s) from `runpod list`"))
    return _terminate_all(_client(), list(args.pod_id))


def _terminate_all(client: Any, pod_ids: list[str], done: list[str] | None = None) -> int:
    """Terminate each pod (confirmed); ``done`` collects the ids that are gone afterwards."""
    from unsloth_nb.backends.runpod.api_types import RunPodApiError

    failed = unknown = 0
    for pod_id in pod_ids:
        try:
            if client.get_pod(pod_id) is None:
                unknown += 1
                print(f"unsloth-nb runpod: there is no pod {pod_id} (see `unsloth-nb runpod list`)", file=sys.stderr)
                continue
            client.terminate_pod(pod_id)
        except RunPodApiError as exc:
            failed += 1
            print(f"unsloth-nb runpod: {exc}", file=sys.stderr)
            continue
        print(f"pod {pod_id} terminated (confirmed: RunPod no longer lists it)")
        if done is not None:
            done.append(pod_id)
    return EXIT_FAILED if failed else EXIT_BAD_INPUT if unknown else EXIT_OK


# ---------------------------------------------------------------------- cleanup
def cmd_cleanup(argv: list[str]) -> int:
    from unsloth_nb.backends.runpod.pods import orphaned_pods

    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--yes", "-y", action="store_true", help="terminate without asking")
        parser.add_argument("--dry-run", action="store_true", help="only show what would be terminated")

    args = _parse("cleanup", argv, configure)
    _cleanup_endpoints(yes=args.yes, dry_run=args.dry_run)
    client = _client()
    pods = orphaned_pods(client)
    collected = [] if args.dry_run else _collect_finished(pods)
    pods = [p for p in pods if p.id not in collected]
    settled = _settle_jobs_without_pods(client, dry_run=args.dry_run)
    if not pods:
        if not settled and not collected:
            print("nothing to clean up: every unsloth-nb pod belongs to a live job (or there are none)")
        return EXIT_OK
    rows = [[p.id, p.name, p.desired_status, p.gpu_label, _usd(p.cost_per_hr)] for p in pods]
    print("unsloth-nb pods that no live job on this machine owns:")
    print(_table(["POD ID", "NAME", "STATUS", "GPU", "$/H"], rows))
    if args.dry_run:
        return EXIT_OK
    if not args.yes:
        if not sys.stdin.isatty():
            raise _BadArguments("not terminating anything: pass --yes to confirm when not running interactively")
        if input(f"Terminate these {len(pods)} pod(s)? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing terminated")
            return EXIT_BAD_INPUT
    ended: list[str] = []
    code = _terminate_all(client, [p.id for p in pods], ended)
    _close_their_jobs([p for p in pods if p.id in ended])
    return code


def cmd_endpoints(argv: list[str]) -> int:
    from unsloth_nb.backends.runpod_serverless.endpoints_cli import main as endpoints_main

    return endpoints_main(argv)


def cmd_volume(argv: list[str]) -> int:
    from unsloth_nb.backends.runpod.volume_cli import main as volume_main

    return volume_main(argv)


def _cleanup_endpoints(*, yes: bool, dry_run: bool) -> None:
    from unsloth_nb.backends.runpod_serverless.endpoints_cli import cleanup

    cleanup(yes=yes, dry_run=dry_run)


def _collect_finished(pods: list[Any]) -> list[str]:
    """Pods whose job (of this machine, owner gone) finished: take the job over, which collects and ends them."""
    from unsloth_nb.backends.runpod.collect import finished_on_pod, take_over
    from unsloth_nb.backends.runpod.pods import job_id_of
    from unsloth_nb.jobrun.store import list_jobs

    unowned = {r.id for r in list_jobs() if r.placement == "runpod" and r.owner_gone}
    collected: list[str] = []
    for pod in pods:
        job_id = job_id_of(pod.name)
        if job_id in unowned and finished_on_pod(pod):
            print(f"pod {pod.id} holds the finished job {job_id}: collecting its outputs before ending it")
            take_over(job_id, print)
            collected.append(pod.id)  # the takeover ended the pod, whatever became of the job
    return collected


def _settle_jobs_without_pods(client: Any, dry_run: bool) -> list[str]:
    """Jobs here whose process died and whose pod RunPod no longer lists: over, though their record says otherwise.

    Nothing follows such a job any more, so its record would say ``training`` forever.
    Marked failed with what is known: the pod ended (its worker's idle timeout ends an
    unwatched pod, or it was lost) and what was not copied here went with it. Returns
    their ids.
    """
    from unsloth_nb.backends.runpod.collect import kept_on_hub, take_over
    from unsloth_nb.jobrun.controller import end_unowned_job
    from unsloth_nb.jobrun.store import list_jobs

    stale = [r for r in list_jobs() if r.placement == "runpod" and r.pod_id and r.owner_gone]
    if not stale:
        return []
    listed = {pod.id for pod in client.list_pods()}
    settled: list[str] = []
    for record in stale:
        if record.pod_id in listed:
            continue  # its pod is still there: the pod step below ends it and closes the job
        if not dry_run and kept_on_hub(record) and take_over(record.id, print):
            settled.append(record.id)  # it finished unwatched and kept its outputs: fetched, succeeded
            continue
        reason = (
            f"its process ended before the job did, and its pod {record.pod_id} ended while nobody watched "
            "(a worker ends an unwatched pod after its idle timeout, or the pod was lost); "
            "what was not copied to this machine went with the pod"
        )
        if dry_run:
            print(f"job {record.id} would be marked failed: {reason}")
            settled.append(record.id)
        elif end_unowned_job(record.id, reason):
            print(f"job {record.id} marked failed: {reason}")
            settled.append(record.id)
    return settled


def _close_their_jobs(pods: list[Any]) -> None:
    """A job here whose process died and whose pod cleanup just ended is over: its folder says so."""
    from unsloth_nb.backends.runpod.pods import job_id_of
    from unsloth_nb.jobrun.controller import end_unowned_job

    for pod in pods:
        job_id = job_id_of(pod.name)
        reason = f"its process ended before the job did, and `unsloth-nb runpod cleanup` terminated its pod {pod.id}"
        if job_id and end_unowned_job(job_id, reason):
            print(f"job {job_id} marked failed: {reason}")


# ---------------------------------------------------------------------- formatting
def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.2f}"


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]
    ]
    return "\n".join(lines)
