"""SmolLM2-135M-Instruct: GGUF conversion time, then 30 LoRA steps on Super Bowl LIX rows.

Run: .venv/bin/python benchmarks/smollm2_30_steps.py
Same settings as tests/integration/test_smollm2_learns.py (40 rows, answers cut to 160
characters, batch 4, lr 1e-3, r 16, max_seq_length 256). The conversion is timed into a
fresh temporary cache so it is always measured. Prints one table row, with the ratio of the
mean of the last 5 losses to the first 5 (the test requires < 0.8).
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import offline, superbowl_rows


def main() -> None:
    offline()  # loopback endpoints, OMP_WAIT_POLICY=PASSIVE unless set, before torch loads
    from unsloth_nb.engine.model import import_unsloth

    import_unsloth()
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.data import DatasetSummary, PreparedDataset
    from unsloth_nb.engine import LogHooks, generate
    from unsloth_nb.jobrun.events import EventLog
    from unsloth_nb.models import smollm2_path
    from unsloth_nb.phases.runner import run_model_phases

    _, rows = superbowl_rows(40)
    dataset = PreparedDataset(
        rows, None, DatasetSummary("superbowl-qa", "prompt_completion", len(rows)), origins=[str(i) for i in range(len(rows))]
    )

    with tempfile.TemporaryDirectory() as scratch:
        begin = time.perf_counter()
        model = smollm2_path(Path(scratch) / "cache")
        converted = time.perf_counter() - begin
        config = TrainConfig.from_dict(
            {
                "model": str(model),
                "dataset": "superbowl-qa",
                "lora": {"r": 16, "alpha": 16, "gradient_checkpointing": "false"},
                "train": {
                    "max_steps": 30,
                    "batch_size": 4,
                    "grad_accum": 1,
                    "lr": 1e-3,
                    "warmup_steps": 3,
                    "max_seq_length": 256,
                },
            }
        )
        log = EventLog("benchmark")
        begin = time.perf_counter()
        result = run_model_phases(config, dataset, Path(scratch) / "out", LogHooks(log))
        wall = time.perf_counter() - begin
        answer = generate(result.shared["model"], result.shared["tokenizer"], "Who won Super Bowl LIX?", max_new_tokens=24)

    losses = [e["loss"] for e in log.read(kinds={"metrics"}) if "loss" in e.data]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        "| model | GGUF -> HF s | steps | run_model_phases s | train() s | s/step | loss first5 -> last5 | last5 / first5 "
        "| peak RSS MB | answer |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| SmolLM2-135M-Instruct | {converted:.1f} | {result.result.metrics['global_step']} | {wall:.1f} | {result.result.metrics['train_runtime']:.1f} | "
        f"{result.result.metrics['train_runtime'] / result.result.metrics['global_step']:.2f} | {mean(losses[:5]):.3f} -> {mean(losses[-5:]):.3f} | "
        f"{mean(losses[-5:]) / mean(losses[:5]):.2f} | {rss_mb:.0f} | {answer!r} |"
    )


if __name__ == "__main__":
    main()
