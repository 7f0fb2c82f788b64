"""SmolLM2-135M-Instruct: GGUF export time and size per type, through the export phase of a real job.

Run: .venv/bin/python benchmarks/gguf_export.py [--types f16,q8_0,q4_k_m]
Trains 2 LoRA steps (so there is an adapter to merge), then the export phase merges it in 16 bit
(Unsloth's save_pretrained_merged), converts with llama.cpp's converter (f16, q8_0) and quantises
the f16 file with llama.cpp's quantiser (q4_k_m, ...). Prints one row per type (seconds, MB, tensor
types) and the q4_k_m answer of llama.cpp to one question. Needs the gguf extra.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import offline, superbowl_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", default="f16,q8_0,q4_k_m", help="GGUF types, comma-separated")
    args = parser.parse_args()
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    offline()
    from unsloth_nb.engine.model import import_unsloth

    import_unsloth()
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.data import DatasetSummary, PreparedDataset
    from unsloth_nb.engine import LogHooks
    from unsloth_nb.export.gguf_file import read_gguf
    from unsloth_nb.jobrun.events import EventLog
    from unsloth_nb.models import smollm2_path
    from unsloth_nb.phases.runner import run_model_phases

    _, rows = superbowl_rows(8)
    dataset = PreparedDataset(
        rows, None, DatasetSummary("superbowl-qa", "messages", len(rows)), origins=[str(i) for i in range(8)]
    )
    config = TrainConfig.from_dict(
        {
            "model": str(smollm2_path()),
            "dataset": "superbowl-qa",
            "lora": {"r": 16, "alpha": 16, "gradient_checkpointing": "false"},
            "train": {"max_steps": 2, "batch_size": 2, "grad_accum": 1, "warmup_steps": 0, "max_seq_length": 256},
            "save": {"gguf": types, "ollama": True},
        }
    )
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "out"
        begin = time.perf_counter()
        run = run_model_phases(config, dataset, out, LogHooks(EventLog("gguf-benchmark")))
        total = time.perf_counter() - begin
        metrics = run.result.metrics
        print("| GGUF type | seconds | MB | tensor types |")
        print("|---|---|---|---|")
        for gguf_type in types:
            summary = read_gguf(run.result.artifacts[f"gguf_{gguf_type}"].local_path(out))
            seconds = metrics.get(f"export_gguf_{gguf_type}_s", "(in convert)")
            print(f"| {gguf_type} | {seconds} | {summary.bytes / 1e6:.1f} | {', '.join(sorted(summary.tensor_types))} |")
        print(
            f"\nllama.cpp converter, all of {', '.join(t for t in types if not t.startswith('q') or t == 'q8_0')} "
            f"(+ f16 for the quantiser) in one process: {metrics.get('export_gguf_convert_s')} s"
        )
        print(f"16-bit merge: {metrics.get('export_merge_16bit_s')} s; whole job (load, 2 steps, save, export): {total:.1f} s")
        quantised = next((t for t in types if t.startswith("q")), types[0])
        from llama_cpp import Llama

        llm = Llama(model_path=str(run.result.artifacts[f"gguf_{quantised}"].local_path(out)), n_ctx=512, verbose=False, seed=0)
        begin = time.perf_counter()
        reply = llm.create_chat_completion(
            [{"role": "user", "content": "What is the capital of France?"}], max_tokens=32, temperature=0.0
        )
        answer_s = time.perf_counter() - begin
        text = reply["choices"][0]["message"]["content"]
        tokens = reply["usage"]["completion_tokens"]
        print(f"llama.cpp on the {quantised} file: {tokens} tokens in {answer_s:.2f} s: {text!r}")
        print(f"result: {len(types)} GGUF files written and read back")


if __name__ == "__main__":
    main()
