"""What many tests share: the repository's small real data sets and the model configs they plan with.

One place, so a test does not spell a path beside the repository or retype SmolLM2's config.json.
Every file named here is committed under ``tests/data/`` (licences beside each set, see its README):
a clone runs its own tests with nothing beside it. Fixtures built from these (``tiny_model``,
``superbowl_rows``, ``dataset_file``, ``serverless``) live in ``tests/conftest.py``; :func:`tiny_job` is the job
every test against the emulators starts.
"""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Any

import unsloth_nb

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = REPO_ROOT / "tests" / "data"

#: Super Bowl LIX prompt/completion rows (MIT): the first 40 of mlx-examples' train split, 8 of valid.
SUPERBOWL_TRAIN = TEST_DATA / "superbowl-qa" / "train.jsonl"
SUPERBOWL_VALID = TEST_DATA / "superbowl-qa" / "valid.jsonl"
#: WikiSQL as plain text (MIT / BSD-3-Clause): the first 32 rows.
WIKISQL_TRAIN = TEST_DATA / "wikisql" / "train.jsonl"
#: Stanford Alpaca's seed tasks, nested ``instances`` form (CC BY-NC 4.0: tests only): the first 12.
ALPACA_SEED = TEST_DATA / "alpaca-seed" / "seed_tasks.jsonl"

#: How many Super Bowl rows the tiny model's tokenizer learns from and the training tests use.
SUPERBOWL_ROWS = 40


def read_jsonl(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """The first ``limit`` rows of a JSONL file (all when None)."""
    with path.open(encoding="utf-8") as handle:
        lines = islice(handle, limit) if limit is not None else handle
        return [json.loads(line) for line in lines if line.strip()]


def superbowl_records(limit: int = SUPERBOWL_ROWS) -> list[dict[str, Any]]:
    """Real prompt/completion rows about a game played after every small model we use was trained."""
    return read_jsonl(SUPERBOWL_TRAIN, limit)


def vocab_texts(records: list[dict[str, Any]]) -> list[str]:
    """What the tiny model's tokenizer learns its merges from: each row's prompt and completion."""
    return [row["prompt"] + "\n" + row["completion"] for row in records]


# ---------------------------------------------------------------------- model configs (config.json)
#: The config.json of the models the planner and the secrets tests reason about, as the Hub serves them
#: (only the fields the size estimate reads).
LLAMA_31_8B: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
    "attention_bias": False,
    "mlp_bias": False,
    "torch_dtype": "bfloat16",
}
QWEN25_32B: dict[str, Any] = {
    "model_type": "qwen2",
    "hidden_size": 5120,
    "intermediate_size": 27648,
    "num_hidden_layers": 64,
    "num_attention_heads": 40,
    "num_key_value_heads": 8,
    "vocab_size": 152064,
    "tie_word_embeddings": False,
}
SMOLLM2_135M: dict[str, Any] = {
    "model_type": "llama",
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "vocab_size": 49152,
    "max_position_embeddings": 8192,
    "tie_word_embeddings": True,
}
MIXTRAL_8X7B: dict[str, Any] = {
    "model_type": "mixtral",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 32000,
    "num_local_experts": 8,
    "num_experts_per_tok": 2,
}


def model_folder(parent: Path, name: str, config: dict[str, Any]) -> Path:
    """A local model folder holding only ``config.json``: enough for planning, not for loading weights."""
    folder = parent / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


# ---------------------------------------------------------------------- jobs on the emulators
#: The few steps of the tiny model a job on the emulated RunPod trains (a test overrides what it is about).
TINY_TRAIN: dict[str, Any] = {"max_steps": 4, "batch_size": 2, "grad_accum": 1, "max_seq_length": 512, "warmup_steps": 0}
TINY_LORA: dict[str, Any] = {"r": 8, "alpha": 8}


def fitting_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Super Bowl rows with the answers cut so that every row fits the tiny model's 512 tokens."""
    return [{"prompt": r["prompt"], "completion": r["completion"][:160]} for r in records]


def jsonl_bytes(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def tiny_job(
    placement: str, model: Path, dataset: Path | str, *, train: dict[str, Any] | None = None, **config: Any
) -> unsloth_nb.Job:
    """A tiny LoRA job through the public API on ``placement`` (``runpod`` or ``serverless``: the emulator)."""
    return unsloth_nb.train(
        model=str(model),
        dataset=str(dataset),
        placement=placement,
        train={**TINY_TRAIN, **(train or {})},
        lora=TINY_LORA,
        **config,
    )


def judge_requests(job: Any) -> int:
    """The requests the judge sends for a job's saved answers: two games a question, and one when the fine-tuned
    and base answers are the same (both games are then the same request, which the client sends once). The tiny
    model often answers nothing at all, so counting ``2 * questions`` would be wrong for it."""
    from unsloth_nb.evaluate.answers import AnswerSet

    outputs = Path(job.record.output_dir) if job.record.output_dir else job.folder.outputs
    answers = AnswerSet.load(outputs)
    assert answers is not None, f"no evaluation answers in {outputs}"
    return sum(1 if pair.base == pair.finetuned else 2 for pair in answers.pairs)
