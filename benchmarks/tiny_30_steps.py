"""30 LoRA steps on the tiny model through the real engine: how long, and how much is overhead.

Run: .venv/bin/python benchmarks/tiny_30_steps.py
Prints one table row: wall time of run_model_phases (load + train + save), the trainer's own
train_runtime, tokens/s, first and last loss, and the ratio wall / train_runtime (the
engine's fixed cost: loading, tokenizing, saving). Timings on a shared CPU vary a lot;
OMP_WAIT_POLICY defaults to PASSIVE here (as in the test suite) because spinning OpenMP
threads on a busy 2-core machine made the same run 5x slower. Set it to ACTIVE to compare.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import offline, superbowl_rows

STEPS = 30


def main() -> None:
    offline()  # loopback endpoints, OMP_WAIT_POLICY=PASSIVE unless set, before torch loads
    from unsloth_nb.engine.model import import_unsloth

    started = time.perf_counter()
    import_unsloth()
    imported = time.perf_counter() - started

    from unsloth_nb.config import TrainConfig
    from unsloth_nb.data import DatasetSummary, PreparedDataset
    from unsloth_nb.engine import LogHooks
    from unsloth_nb.jobrun.events import EventLog
    from unsloth_nb.phases.runner import run_model_phases
    from unsloth_nb.testing import build_tiny_model

    records, rows = superbowl_rows(40)
    dataset = PreparedDataset(
        rows, None, DatasetSummary("superbowl-qa", "prompt_completion", len(rows)), origins=[str(i) for i in range(len(rows))]
    )

    with tempfile.TemporaryDirectory() as scratch:
        model = build_tiny_model(Path(scratch) / "tiny", vocab_texts=[r["prompt"] + "\n" + r["completion"] for r in records])
        config = TrainConfig.from_dict(
            {
                "model": str(model),
                "dataset": "superbowl-qa",
                "lora": {"r": 8, "gradient_checkpointing": "false"},
                "train": {
                    "max_steps": STEPS,
                    "batch_size": 4,
                    "grad_accum": 1,
                    "lr": 5e-3,
                    "warmup_steps": 1,
                    "max_seq_length": 256,
                },
            }
        )
        log = EventLog("benchmark")
        begin = time.perf_counter()
        result = run_model_phases(config, dataset, Path(scratch) / "out", LogHooks(log))
        wall = time.perf_counter() - begin

    metrics = [e.data for e in log.read(kinds={"metrics"}) if "loss" in e.data]
    tokens = metrics[-1].get("num_tokens", 0)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        "| model | steps | OMP_WAIT_POLICY | import unsloth s | run_model_phases s | train() s | tokens/s | loss first -> last "
        "| peak RSS MB | wall / train() |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| tiny Llama (h64, 2 layers) | {result.result.metrics['global_step']} | {os.environ['OMP_WAIT_POLICY']} | {imported:.1f} | "
        f"{wall:.2f} | {result.result.metrics['train_runtime']:.2f} | "
        f"{tokens / result.result.metrics['train_runtime']:.0f} | {metrics[0]['loss']:.3f} -> {metrics[-1]['loss']:.3f} | {rss_mb:.0f} | "
        f"{wall / result.result.metrics['train_runtime']:.2f} |"
    )


if __name__ == "__main__":
    main()
