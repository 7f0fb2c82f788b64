"""What the benchmark scripts share: loopback-only settings, the tiny model, statistics, tables.

Every script prints a Markdown table whose rows carry the figure, its target and whether
it is met, then one ``result:`` line. Timing targets do not change the exit status (a
shared CI machine cannot gate on them); ``--strict`` makes a missed target exit 1.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

from unsloth_nb.testing.loopback import LOOPBACK_ENV  # nothing a benchmark runs may leave this machine

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEMO_DATASET = ROOT / "unsloth_nb" / "demo_data" / "superbowl_qa_demo.jsonl"
#: The first 40 rows of the Super Bowl LIX Q&A (MIT), committed with the tests (licence beside it).
SUPERBOWL = ROOT / "tests" / "data" / "superbowl-qa" / "train.jsonl"

#: Set unless the caller chose otherwise, before torch loads (as the test suite does): on a
#: busy machine, OpenMP threads that spin while they wait make small-model steps several
#: times slower and far noisier. Both sides of every comparison run with the same value.
OMP_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


def offline(job_home: Path | None = None) -> Path:
    """Point every endpoint at loopback and job folders at a scratch root; returns that root.

    A benchmark must neither reach the internet nor fill the user's own job list.
    Call it before anything imports torch (see OMP_DEFAULTS).
    """
    os.environ.update(LOOPBACK_ENV)
    for name, value in OMP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    for name in ("HF_TOKEN", "RUNPOD_API_KEY"):
        os.environ.pop(name, None)
    home = job_home or Path(tempfile.mkdtemp(prefix="unsloth-nb-bench-home-"))
    os.environ["UNSLOTH_NB_HOME"] = str(home)
    return home


def superbowl_rows(limit: int = 40, answer_chars: int = 160) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """The first rows of tests/data/superbowl-qa (at most 40), raw and as messages (answers cut so rows fit 256 tokens)."""
    with SUPERBOWL.open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in islice(handle, limit)]
    rows = [
        {"messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["completion"][:answer_chars]}]}
        for r in records
    ]
    return records, rows


def demo_records(limit: int | None = None) -> list[dict[str, str]]:
    """The bundled Super Bowl LIX prompt/completion rows (ship with the package, so a fresh clone has them)."""
    with DEMO_DATASET.open(encoding="utf-8") as handle:
        lines = islice(handle, limit) if limit else handle
        return [json.loads(line) for line in lines if line.strip()]


def demo_messages(limit: int | None = None) -> list[dict[str, Any]]:
    """The same rows as unsloth-nb normalises them (user turn, assistant turn)."""
    return [
        {"messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["completion"]}]}
        for r in demo_records(limit)
    ]


def tiny_model(folder: Path, *, trains_here: bool = True) -> Path:
    """The package's tiny random Llama, its tokenizer trained on the demo rows (cached in ``folder``).

    ``trains_here``: this process will train, so ``unsloth`` is imported first (it must
    patch transformers before anyone else imports it). A process that only hands the
    folder to a kernel or a pod skips that 10-second import.
    """
    from unsloth_nb.testing import build_tiny_model

    if trains_here:
        from unsloth_nb.engine.model import import_unsloth

        import_unsloth()
    texts = [r["prompt"] + "\n" + r["completion"] for r in demo_records()]
    return build_tiny_model(folder, vocab_texts=texts)


def scratch_dir(name: str) -> Path:
    """A per-user cache folder for things worth keeping between runs (built models)."""
    base = Path(os.environ.get("UNSLOTH_NB_BENCH_CACHE") or Path(tempfile.gettempdir()) / f"unsloth-nb-bench-{os.getuid()}")
    path = base / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------------- the RunPod emulator
#: The account key the benchmarks' emulator accepts (built, so no token-shaped literal is committed).
EMULATOR_API_KEY = "rpa_" + "BENCHMARK0EMULATOR0KEY".ljust(38, "0")
#: What each control-plane call costs in the overhead benchmarks: about what RunPod's API takes to answer.
API_LATENCY_S = 0.1


@contextlib.contextmanager
def emulated_runpod(
    name: str, *, image_pull_s: float = 0.2, api_latency_s: float = 0.0, pod_env: dict[str, str] | None = None
) -> Iterator[Any]:
    """A RunPod emulator (pods and serverless) that this process's client and the ``runpod`` SDK talk to.

    ``image_pull_s`` is both a pod's start delay and a serverless worker's cold start, so the two placements
    pay the same; ``api_latency_s`` is added to every control-plane call. A benchmark that relays the pod
    proxy sets ``UNSLOTH_NB_RUNPOD_PROXY_TEMPLATE`` again inside the block.
    """
    import runpod

    from unsloth_nb.testing.runpod_emulator import RunPodEmulator

    with RunPodEmulator(
        start_delay=image_pull_s, api_key=EMULATOR_API_KEY, workdir=scratch_dir(name), stop_grace_s=2.0, extra_env=pod_env or {}
    ) as emulator:
        os.environ.update(
            {
                "RUNPOD_API_BASE_URL": emulator.api_base_url,
                "RUNPOD_ENDPOINT_BASE_URL": emulator.serverless_url,
                "RUNPOD_API_KEY": EMULATOR_API_KEY,
                "UNSLOTH_NB_RUNPOD_PROXY_TEMPLATE": emulator.proxy_url_template,
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
        )
        runpod.api_key = EMULATOR_API_KEY  # the SDK reads only its module attribute
        if api_latency_s:
            emulator.faults.slow_s = {"*": api_latency_s}
        emulator.serverless.faults.cold_start_s = image_pull_s
        yield emulator


def overhead_job(model: Path, steps: int, placement: str) -> dict[str, Any]:
    """The tiny-model job both overhead benchmarks run (one loss a step, on the bundled demo rows)."""
    return {
        "model": {"name": str(model), "load_in_4bit": False},
        "dataset": {"path": str(DEMO_DATASET)},
        "lora": {"r": 16, "alpha": 16},
        "train": {"max_steps": steps, "batch_size": 4, "grad_accum": 1, "lr": 1e-3, "max_seq_length": 256, "logging_steps": 1},
        "placement": placement,
    }


# ---------------------------------------------------------------------- statistics
def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100), as numpy's default computes it."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Spread:
    """Median and range of repeated measurements: what a noisy machine lets us claim."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else math.nan

    @property
    def low(self) -> float:
        return min(self.values) if self.values else math.nan

    @property
    def high(self) -> float:
        return max(self.values) if self.values else math.nan

    def show(self, fmt: str = ".3f", unit: str = "") -> str:
        if not self.values:
            return "-"
        if len(self.values) == 1:
            return f"{self.median:{fmt}}{unit}"
        return f"{self.median:{fmt}}{unit} ({self.low:{fmt}}-{self.high:{fmt}})"


# ---------------------------------------------------------------------- tables
@dataclass
class Row:
    """One line of a result table; ``ok`` None means "reported, no target"."""

    cells: list[str]
    ok: bool | None = None


def print_table(title: str, header: Sequence[str], rows: Iterable[Row], note: str | None = None) -> list[Row]:
    """A Markdown table (pastes into the README as it is), with an ``ok`` column when any row has a target."""
    rows = list(rows)
    with_ok = any(r.ok is not None for r in rows)
    columns = [*header, "ok"] if with_ok else list(header)
    print(f"\n{title}\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        cells = list(row.cells)
        if with_ok:
            cells.append("-" if row.ok is None else ("yes" if row.ok else "**NO**"))
        print("| " + " | ".join(cells) + " |")
    if note:
        print(f"\n{note}")
    sys.stdout.flush()
    return rows


def finish(rows: Iterable[Row], strict: bool) -> int:
    """Print the verdict; exit status 1 only for a missed target under ``--strict``."""
    missed = [r for r in rows if r.ok is False]
    print("\nresult:", "all targets met" if not missed else f"TARGET MISSED ({len(missed)})")
    return 1 if missed and strict else 0


# ---------------------------------------------------------------------- a kernel's comm, without a kernel
class SerialisingComm:
    """The kernel end of a widget comm: every message is serialised and signed as ipykernel does.

    Installed as ``comm.create_comm``, it makes widgets render in a plain process
    (``widgets_can_render()`` is true), so the job view and the chart do their full
    work, including the cost of putting each update on the wire.
    """

    opened: ClassVar[list[SerialisingComm]] = []

    def __init__(self, **kwargs: Any) -> None:
        from jupyter_client.session import Session

        self.comm_id = kwargs.get("comm_id") or uuid.uuid4().hex
        self.session = Session(key=b"benchmark-key")
        self.parent = self.session.msg("execute_request", content={"code": ""})
        self.messages = 0
        self.wire_bytes = 0
        self._handler: Callable[..., Any] | None = None
        self._send("comm_open", kwargs.get("data"), kwargs.get("buffers"))
        SerialisingComm.opened.append(self)

    def on_msg(self, callback: Callable[..., Any]) -> None:
        self._handler = callback

    def on_close(self, callback: Callable[..., Any]) -> None:
        pass

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self._send("comm_msg", data, buffers)

    def _send(self, msg_type: str, data: Any, buffers: Any) -> None:
        message = self.session.msg(msg_type, content={"comm_id": self.comm_id, "data": data}, parent=self.parent)
        frames = self.session.serialize(message)
        self.messages += 1
        self.wire_bytes += sum(map(len, frames)) + sum(len(memoryview(b)) for b in buffers or [])

    @classmethod
    def install(cls) -> None:
        import comm

        cls.opened = []
        comm.create_comm = lambda **kwargs: cls(**kwargs)

    @classmethod
    def totals(cls) -> tuple[int, int]:
        return sum(c.messages for c in cls.opened), sum(c.wire_bytes for c in cls.opened)
