"""Training throughput and peak memory on a GPU: bare Unsloth vs the unsloth-nb job vs transformers + peft.

A random-initialised Llama-architecture model of about 1B parameters (Llama-3.2-1B's
shape with a 32k vocabulary; built here, nothing downloaded) is trained with LoRA r=16
on all linear layers, bf16, batch 8 x 1024 tokens, the same rows for every variant:

(a) bare Unsloth: FastLanguageModel -> get_peft_model -> TRL SFTTrainer -> train();
(b) the unsloth-nb in-kernel job: ``unsloth_nb.train(config)`` with its view attached
    (training thread, events, chart, widget messages serialised as a kernel would);
(c) plain transformers + peft: AutoModelForCausalLM -> peft LoRA -> transformers Trainer,
    with transformers' gradient checkpointing (what a peft user turns on for memory).

Each variant runs in a fresh process (Unsloth patches transformers at import, so (c)
must never share a process with it). Tokens/s counts the steps after the first
``--warmup`` ones, from step-end time stamps (for (b), its progress events); every row
is the same text, so each step trains exactly batch x row-length tokens. Peak memory is
``torch.cuda.max_memory_allocated`` (peak RSS on a CPU).

    python benchmarks/gpu_throughput.py            # GPU: ~1B model, 100 steps each (about 5 min on one H200)
    python benchmarks/gpu_throughput.py --quick    # tiny model, 6 steps each: the CPU smoke test CI runs

Target (GPU only): b/a >= 0.99 tokens/s. Without a GPU the full run falls back to the
tiny model and says so; its figures only show that the script works.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, Row, SerialisingComm, finish, offline, print_table, scratch_dir

TARGET = 0.99
VARIANTS = {
    "a": "bare Unsloth + TRL",
    "b": "unsloth-nb in-kernel job",
    "c": "transformers + peft",
}
#: Llama-3.2-1B's shape with a 32k vocabulary: ~1.04B parameters (tied embeddings).
LLAMA_1B = {
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": True,
}
FILLER = "the quick brown fox jumps over the lazy dog and the capital of France is Paris"


@dataclass(frozen=True)
class Workload:
    model: str
    data: str
    row_tokens: int  # tokens per row as trained (text + EOS)
    steps: int
    warmup: int
    batch_size: int
    seq_len: int
    on_gpu: bool

    @property
    def optim(self) -> str:
        return "adamw_8bit" if self.on_gpu else "adamw_torch"


@dataclass
class Outcome:
    variant: str
    tokens_per_second: float
    step_seconds: float
    peak_memory_gb: float
    memory_kind: str
    steps: int
    wall_seconds: float


# ---------------------------------------------------------------------- the model and the rows
def build_model(folder: Path, on_gpu: bool, quick: bool) -> Path:
    """A random Llama in ``folder`` with the tiny model's tokenizer (its 512 ids fit any vocabulary)."""
    from unsloth_nb.testing import build_tiny_model

    tokenizer_dir = build_tiny_model(folder.parent / "tiny-llama-tokenizer")
    if quick or not on_gpu:
        return tokenizer_dir  # the tiny model itself: already a random Llama
    if (folder / "model.safetensors").exists() or (folder / "model.safetensors.index.json").exists():
        return folder
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        **LLAMA_1B,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    staging = Path(tempfile.mkdtemp(prefix=".llama-1b-", dir=folder.parent))
    torch.manual_seed(1234)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    del model
    torch.cuda.empty_cache()
    shutil.rmtree(folder, ignore_errors=True)  # a half-written folder from an interrupted run
    os.replace(staging, folder)
    return folder


def write_rows(model: Path, path: Path, seq_len: int, count: int) -> int:
    """``count`` copies of one text of exactly ``seq_len - 8`` tokens; returns tokens per trained row (+ EOS)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    target = seq_len - 8
    words = (FILLER + " ") * (seq_len // 4 + 8)
    text = ""
    for word in words.split():
        candidate = f"{text} {word}" if text else word
        if len(tokenizer(candidate)["input_ids"]) > target:
            break
        text = candidate
    tokens = len(tokenizer(text)["input_ids"])
    path.write_text("".join(json.dumps({"text": text}) + "\n" for _ in range(count)), encoding="utf-8")
    return tokens + 1


# ---------------------------------------------------------------------- the three variants (child processes)
def step_callback(stamps: list[float]) -> Any:
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            stamps.append(time.time())

    return StepClock()


def sft_config(work: Workload, out: Path, dtype: Any) -> Any:
    import torch
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(out),
        per_device_train_batch_size=work.batch_size,
        gradient_accumulation_steps=1,
        learning_rate=2e-4,
        warmup_steps=5,
        weight_decay=0.001,
        lr_scheduler_type="linear",
        optim=work.optim,
        seed=3407,
        logging_steps=1,
        max_steps=work.steps,
        max_length=work.seq_len,
        dataset_text_field="text",
        packing=False,
        report_to="none",
        disable_tqdm=True,
        save_strategy="no",
        use_cpu=not work.on_gpu,
        bf16=dtype == torch.bfloat16,
        fp16=dtype == torch.float16,
    )


def rows_dataset(work: Workload) -> Any:
    from datasets import load_dataset

    return load_dataset("json", data_files=work.data, split="train")


def run_bare_unsloth(work: Workload, out: Path) -> list[float]:
    import unsloth  # noqa: F401  (first: it patches transformers and trl)
    from trl import SFTTrainer
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=work.model, max_seq_length=work.seq_len, dtype=None, load_in_4bit=False
    )
    model = FastLanguageModel.get_peft_model(
        model,
        r=16,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        lora_alpha=16,
        lora_dropout=0,
        bias="none",
        use_gradient_checkpointing="unsloth",
        random_state=3407,
        max_seq_length=work.seq_len,
    )
    stamps: list[float] = []
    trainer = SFTTrainer(
        model=model,
        processing_class=tokenizer,
        train_dataset=rows_dataset(work),
        args=sft_config(work, out, model.dtype),
        callbacks=[step_callback(stamps)],
    )
    trainer.train()
    return stamps


def run_job(work: Workload, out: Path) -> list[float]:
    from unsloth_nb.engine.model import import_unsloth

    import_unsloth()
    import unsloth_nb
    from unsloth_nb.ui.view import JobView

    SerialisingComm.install()
    config = {
        "model": {"name": work.model, "load_in_4bit": False},
        "dataset": {"path": work.data},
        "lora": {"r": 16, "alpha": 16},
        "train": {
            "max_steps": work.steps,
            "batch_size": work.batch_size,
            "grad_accum": 1,
            "lr": 2e-4,
            "warmup_steps": 5,
            "max_seq_length": work.seq_len,
            "logging_steps": 1,
            "optim": work.optim,
        },
        "save": {"output_dir": str(out)},
        "placement": "local",
    }
    job = unsloth_nb.train(config)
    view = JobView(job)
    view.widget  # noqa: B018  (widgets and their flusher live, as in a notebook)
    job.wait()
    view.close()
    return [e.time for e in job.events(kinds={"progress"})]


def run_transformers_peft(work: Workload, out: Path) -> list[float]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForLanguageModeling, Trainer, TrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(work.model)
    dtype = torch.bfloat16 if work.on_gpu else torch.float32
    model = AutoModelForCausalLM.from_pretrained(work.model, dtype=dtype, device_map="cuda" if work.on_gpu else None)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    model = get_peft_model(
        model,
        LoraConfig(
            r=16,
            lora_alpha=16,
            lora_dropout=0.0,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            task_type="CAUSAL_LM",
        ),
    )
    eos = tokenizer.eos_token_id
    dataset = rows_dataset(work).map(
        lambda row: {"input_ids": (tokenizer(row["text"])["input_ids"] + [eos])[: work.seq_len]}, remove_columns=["text"]
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    stamps: list[float] = []
    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=work.batch_size,
        gradient_accumulation_steps=1,
        learning_rate=2e-4,
        warmup_steps=5,
        weight_decay=0.001,
        lr_scheduler_type="linear",
        optim=work.optim,
        seed=3407,
        logging_steps=1,
        max_steps=work.steps,
        report_to="none",
        disable_tqdm=True,
        save_strategy="no",
        use_cpu=not work.on_gpu,
        bf16=dtype == torch.bfloat16,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        callbacks=[step_callback(stamps)],
    )
    trainer.train()
    return stamps


RUNNERS = {"a": run_bare_unsloth, "b": run_job, "c": run_transformers_peft}


def child(variant: str, work: Workload, result_path: Path) -> None:
    """One variant in this (fresh) process; writes an Outcome as JSON."""
    offline(Path(tempfile.mkdtemp(prefix="unsloth-nb-gpu-home-")))
    import torch

    if work.on_gpu:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        stamps = RUNNERS[variant](work, Path(out))
    wall = time.perf_counter() - started
    if len(stamps) != work.steps:
        raise RuntimeError(f"({variant}) saw {len(stamps)} step ends, expected {work.steps}")
    measured = stamps[work.warmup :]
    seconds = measured[-1] - stamps[work.warmup - 1]
    steps = len(measured)
    if work.on_gpu:
        peak, kind = torch.cuda.max_memory_allocated() / 2**30, "GPU allocated"
    else:
        peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "peak RSS"
    outcome = Outcome(variant, steps * work.batch_size * work.row_tokens / seconds, seconds / steps, peak, kind, steps, wall)
    result_path.write_text(json.dumps(asdict(outcome)))


# ---------------------------------------------------------------------- the parent
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny model, 6 steps per variant (CI smoke, any device)")
    parser.add_argument("--steps", type=int, default=100, help="steps per variant on a GPU (default 100)")
    parser.add_argument("--warmup", type=int, default=10, help="first steps left out of tokens/s (default 10)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "WORKLOAD_JSON", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        variant, workload, result = args.child
        child(variant, Workload(**json.loads(workload)), Path(result))
        return 0

    offline()
    import torch

    on_gpu = torch.cuda.is_available()
    small = args.quick or not on_gpu
    device = torch.cuda.get_device_name(0) if on_gpu else "CPU (no GPU here: tiny-model smoke run, no target)"
    model = build_model(scratch_dir("llama-1b-random"), on_gpu, small)
    seq_len, batch = (128, 4) if small else (1024, 8)
    steps, warmup = (6, 2) if small else (args.steps, args.warmup)
    data = scratch_dir("gpu-throughput") / f"rows-{seq_len}.jsonl"
    data.parent.mkdir(parents=True, exist_ok=True)
    row_tokens = write_rows(model, data, seq_len, count=max(64, steps * batch))
    work = Workload(str(model), str(data), row_tokens, steps, warmup, batch, seq_len, on_gpu)

    outcomes: dict[str, Outcome] = {}
    for variant in VARIANTS:
        print(f"[{time.strftime('%H:%M:%S')}] ({variant}) {VARIANTS[variant]} ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as scratch:
            result = Path(scratch) / "result.json"
            command = [sys.executable, __file__, "--child", variant, json.dumps(asdict(work)), str(result)]
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
            if done.returncode != 0 or not result.exists():
                sys.stderr.write(done.stdout[-3000:] + done.stderr[-6000:])
                raise SystemExit(f"variant ({variant}) failed with exit {done.returncode}")
            outcomes[variant] = Outcome(**json.loads(result.read_text()))

    base = outcomes["a"].tokens_per_second
    rows = []
    for variant, label in VARIANTS.items():
        o = outcomes[variant]
        ratio = o.tokens_per_second / base
        targeted = variant == "b" and on_gpu and not args.quick
        rows.append(
            Row(
                [
                    f"({variant}) {label}",
                    f"{o.tokens_per_second:,.0f}",
                    f"{o.step_seconds * 1000:.0f} ms",
                    f"{o.peak_memory_gb:.2f} GB {o.memory_kind}",
                    f"{ratio:.3f}",
                    f"{o.wall_seconds:.0f} s",
                    f">= {TARGET}" if variant == "b" else "-",
                ],
                ok=(ratio >= TARGET) if targeted else None,
            )
        )
    params = "~1.04B" if not small else "tiny (h64, 2 layers)"
    rows = print_table(
        f"LoRA r=16 throughput on {device}: random Llama {params}, batch {batch} x {row_tokens} tokens, "
        f"{steps - warmup} measured steps after {warmup}",
        ["variant", "tokens/s", "step", "peak memory", "vs (a)", "process wall", "target"],
        rows,
        note=None if on_gpu and not args.quick else "Not a GPU measurement: the b/a target applies to the GPU run only.",
    )
    return finish(rows, args.strict)


if __name__ == "__main__":
    raise SystemExit(main())
