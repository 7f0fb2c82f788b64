"""``unsloth-nb runpod emulator``: run the RunPod emulator by hand, until Ctrl-C.

It prints the variables to export in the shell (or notebook) that should talk to
it instead of RunPod, as lines bash accepts when pasted, and the admin endpoint for
fault knobs. By hand the ports are fixed (8765 for the API, 8766 for the pod proxy),
so the exports stay valid across restarts, and pod logs stay on disk after it stops.

SIGINT and SIGTERM both stop it cleanly. It installs its own handlers for both rather
than rely on Python's inherited defaults: a process started from a non-interactive
shell (``make test &``, nohup, a CI runner without a terminal) inherits SIGINT as
*ignored*, and Python then never raises KeyboardInterrupt.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from types import FrameType

from unsloth_nb.testing.runpod_emulator.emulator import RunPodEmulator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unsloth-nb runpod emulator",
        description="Emulate the RunPod API and pod proxy on 127.0.0.1; pods run their start command as local processes.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"API port (default {DEFAULT_PORT}; 0 = a free one)")
    parser.add_argument(
        "--proxy-port",
        type=int,
        default=DEFAULT_PROXY_PORT,
        help=f"pod HTTP proxy port (default {DEFAULT_PROXY_PORT}; 0 = a free one)",
    )
    parser.add_argument("--start-delay", type=float, default=1.0, help="seconds a new pod's runtime stays null (default 1)")
    parser.add_argument("--api-key", default=None, help="accept only this API key (default: accept any)")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where pods' folders and logs go; kept after it stops (default: runpod-emulator in the unsloth-nb data folder)",
    )
    parser.add_argument(
        "--worker-idle-timeout",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help=f"set {WORKER_IDLE_ENV} in every pod: how long an idle worker waits for a client before it ends its pod "
        "(default: the worker's own, 900)",
    )
    return parser


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def pod_env(args: argparse.Namespace) -> dict[str, str]:
    """What every pod's container gets on top of RunPod's variables, as an image's ENV would add."""
    if args.worker_idle_timeout is None:
        return {}
    return {WORKER_IDLE_ENV: f"{args.worker_idle_timeout:g}"}


#: The worker's setting (``unsloth_nb.worker.settings.IDLE_ENV``); spelled here so the emulator imports no worker code.
WORKER_IDLE_ENV = "UNSLOTH_NB_WORKER_IDLE_TIMEOUT"
DEFAULT_PORT = 8765
DEFAULT_PROXY_PORT = 8766

#: What RUNPOD_API_KEY is set to when the emulator accepts any key (the client needs some value).
ANY_KEY = "emulator"


def default_workdir() -> Path:
    from unsloth_nb.jobrun.store import data_root

    return data_root() / "runpod-emulator"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    done = threading.Event()

    def finish(signum: int, frame: FrameType | None) -> None:
        done.set()

    stopping = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, finish) for signum in stopping}

    workdir = args.workdir or default_workdir()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with RunPodEmulator(
            port=args.port,
            proxy_port=args.proxy_port,
            start_delay=args.start_delay,
            api_key=args.api_key,
            workdir=workdir,
            extra_env=pod_env(args),
        ) as emulator:
            print("RunPod emulator running. Paste these lines into the shell that should use it")
            print("(in a notebook, set them with %env NAME=value, or in os.environ, before the job starts):")
            for line in export_lines(emulator, args.api_key):
                print(f"  {line}")
            print(f"State and fault knobs: {emulator.admin_url}/state, POST {emulator.admin_url}/faults")
            print(f"Pod logs (kept after it stops): {emulator.workdir / 'logs'}")
            if args.worker_idle_timeout is not None:
                print(f"Pods' workers end their pod after {args.worker_idle_timeout:g} s without a client.")
            print("Ctrl-C stops it and kills every pod.", flush=True)
            while not done.wait(0.5):
                pass
            bill = emulator.ledger.total_usd()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
    print(f"Stopped. Billed ${bill:.4f} in all. Pod logs: {workdir / 'logs'}")
    return 0


def export_lines(emulator: RunPodEmulator, api_key: str | None) -> list[str]:
    """``export NAME=value`` lines that bash and zsh accept as pasted (values quoted where needed)."""
    import shlex

    values = {
        "RUNPOD_API_BASE_URL": emulator.api_base_url,
        "UNSLOTH_NB_RUNPOD_PROXY_TEMPLATE": emulator.proxy_url_template,
        "RUNPOD_ENDPOINT_BASE_URL": emulator.serverless_url,
        "NO_PROXY": "127.0.0.1,localhost",
        "RUNPOD_API_KEY": api_key or ANY_KEY,
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
