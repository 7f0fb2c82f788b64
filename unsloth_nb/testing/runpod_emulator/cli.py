"""``unsloth-nb runpod emulator``: run the RunPod emulator by hand, until Ctrl-C.

It prints the variables to export in the shell (or notebook) that should talk to
it instead of RunPod, and the admin endpoint for fault knobs.

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
    parser.add_argument("--port", type=int, default=0, help="API port (default: a free one)")
    parser.add_argument("--proxy-port", type=int, default=0, help="pod HTTP proxy port (default: a free one)")
    parser.add_argument("--start-delay", type=float, default=1.0, help="seconds a new pod's runtime stays null (default 1)")
    parser.add_argument("--api-key", default=None, help="accept only this API key (default: accept any)")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where pods' folders and logs go (default: a temporary folder)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    done = threading.Event()

    def finish(signum: int, frame: FrameType | None) -> None:
        done.set()

    stopping = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, finish) for signum in stopping}

    try:
        with RunPodEmulator(
            port=args.port, proxy_port=args.proxy_port, start_delay=args.start_delay, api_key=args.api_key, workdir=args.workdir
        ) as emulator:
            print("RunPod emulator running. In the shell or notebook that should use it:")
            print(f"  export RUNPOD_API_BASE_URL={emulator.api_base_url}")
            print(f"  export UNSLOTH_NB_RUNPOD_PROXY_TEMPLATE='{emulator.proxy_url_template}'")
            print("  export NO_PROXY=127.0.0.1,localhost")
            print(f"  export RUNPOD_API_KEY={args.api_key or '<any non-empty value>'}")
            print(f"State and fault knobs: {emulator.admin_url}/state, POST {emulator.admin_url}/faults")
            print(f"Pod logs: {emulator.workdir / 'logs'}")
            print("Ctrl-C stops it and kills every pod.", flush=True)
            while not done.wait(0.5):
                pass
            bill = emulator.ledger.total_usd()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
    print(f"Stopped. Billed ${bill:.4f} in all.")
    return 0
