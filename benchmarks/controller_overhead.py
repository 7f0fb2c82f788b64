"""What an unsloth-nb job costs on top of the same training written as a bare Unsloth + TRL script.

(a) bare: FastLanguageModel.from_pretrained -> get_peft_model -> SFTTrainer (with
    Unsloth's train_on_responses_only) -> trainer.train() -> save the adapter, as
    Unsloth's notebooks write it, with the settings unsloth-nb derives from its config.
(b) job: ``unsloth_nb.train(config)`` in this process (the in-kernel backend: a training
    thread, the controller loop, the event log and its JSONL file) with the job view
    attached and its widgets live: status, progress, loss chart, each update serialised
    and signed as a kernel would put it on the wire.

Same model, same rows, same steps and hyperparameters. Both run in ONE process with warm
imports, alternating a/b then b/a, after one discarded warm-up of each. Why not a fresh
process per run: ``import unsloth`` alone takes 10-15 s here and varies by seconds, which
would bury a 1 % difference; it is the same import for both and is reported by
``import_time.py``.

(a) also trains in a worker thread, because the job does: on an oversubscribed CPU,
torch's OpenMP parallel regions started from the main thread wait on descheduled
partners, and a small model then trains several times slower there than in any other
thread (measured here with OMP_WAIT_POLICY unset: 3-10 s vs 0.8 s for 3 tiny steps).
That is the machine, not unsloth-nb. OMP_WAIT_POLICY=PASSIVE is set unless given (as
the test suite does) and narrows the gap; ``--bare-main-thread`` measures (a) on the
main thread anyway.

Reported per pair, as the ratio b/a:

- train(): the ``trainer.train()`` call alone (timed by wrapping SFTTrainer.train, for both);
- training phase: SFTTrainer built (tokenising) + train(); for (b), the job's ``training``
  status event to its ``saving`` event;
- end to end: (a) load .. adapter saved; (b) ``unsloth_nb.train()`` called .. job ended;
- CPU: the process's CPU seconds (all threads) during train(), which another process on a shared
  machine cannot stretch the way it stretches wall time;
- median step: the median gap between two training steps' starts (the step, the optimizer, every
  callback, ours included). A few steps slowed by someone else's burst do not move a median, so this
  is the steadiest per-step figure on a shared machine; once-per-run costs (the final checkpoint)
  are outside it and reported apart.

    .venv/bin/python benchmarks/controller_overhead.py              # tiny model 5 pairs, SmolLM2-135M 5 pairs x 20 steps
    .venv/bin/python benchmarks/controller_overhead.py --quick      # tiny model, 1 pair, 3 steps (CI smoke)
    .venv/bin/python benchmarks/controller_overhead.py --no-tiny --switch-interval-too   # + (c), SmolLM2 only

``--switch-interval-too`` adds (c): the same job with Python's default 5 ms thread switch
interval instead of the 1 ms the in-kernel backend sets while training (for notebook
responsiveness, see kernel_responsiveness.py), rotated with (a) and (b) in the same run,
so the cost of that choice is measured side by side rather than across two runs.

Where (b)'s extra time goes in the training thread is measured in the same (b) runs: every
event the training thread emits is timed in its parts (payload check, JSON serialisation + file
write and flush, subscriber calls: the chart's and the view's, and the rest of ``emit``: the
log's lock and the Event itself), summed per run and shown as a share of train(). Each of those
is a wrapper around the real method, so the instrumented (b) is a little slower than a plain one.

Target: b/a <= 1.01 for train() (median of the pairs). The machine may be shared; the
spread shows how far to trust the median.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import io
import itertools
import math
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    DEMO_DATASET,
    Row,
    SerialisingComm,
    Spread,
    demo_messages,
    finish,
    offline,
    print_table,
    scratch_dir,
    tiny_model,
)

TARGET = 1.01


@dataclass(frozen=True)
class Setup:
    """One workload: model folder, rows and the training settings both sides use."""

    label: str
    model: Path
    steps: int
    rows: int
    batch_size: int = 4
    max_seq_length: int = 256
    lr: float = 1e-3
    warmup_steps: int = 1

    def job_config(self, output_dir: Path) -> dict[str, Any]:
        return {
            "model": {"name": str(self.model), "load_in_4bit": False},
            "dataset": {"path": str(DEMO_DATASET), "max_rows": self.rows},
            "lora": {"r": 16, "alpha": 16},
            "train": {
                "max_steps": self.steps,
                "lr": self.lr,
                "batch_size": self.batch_size,
                "grad_accum": 1,
                "warmup_steps": self.warmup_steps,
                "max_seq_length": self.max_seq_length,
                "logging_steps": 1,
            },
            "save": {"output_dir": str(output_dir)},
            "placement": "local",
        }


#: The parts of EventLog.emit timed in the training thread, in the order the table shows them.
PARTS = ("check_payload", "serialise + write + flush", "subscribers", "emit rest (lock, Event)")


class EventCost:
    """Seconds the training thread spends in each part of EventLog.emit, summed until :meth:`take`.

    Installed once: wraps the module-level ``check_payload`` and ``EventLog``'s ``emit``, ``_store``
    and ``_notify`` with timers that count only calls made on a job's training thread.
    """

    def __init__(self) -> None:
        from unsloth_nb.jobrun import events

        self.seconds: dict[str, float] = dict.fromkeys(PARTS, 0.0)
        self.events = 0
        self._local = threading.local()
        self._timed_function(events, "check_payload", "check_payload")
        self._timed_method(events.EventLog, "_store", "serialise + write + flush")
        self._timed_method(events.EventLog, "_notify", "subscribers")
        emit = events.EventLog.emit
        cost = self

        @functools.wraps(emit)
        def timed_emit(log: Any, kind: str, /, **data: Any) -> Any:
            if not cost._training():
                return emit(log, kind, **data)
            inner_before = sum(cost.seconds[p] for p in PARTS[:3])
            started = time.perf_counter()
            try:
                return emit(log, kind, **data)
            finally:
                total = time.perf_counter() - started
                inner = sum(cost.seconds[p] for p in PARTS[:3]) - inner_before
                cost.seconds[PARTS[3]] += max(0.0, total - inner)
                cost.events += 1

        events.EventLog.emit = timed_emit  # type: ignore[method-assign]

    @staticmethod
    def _training() -> bool:
        return threading.current_thread().name.startswith("unsloth-nb-train-")

    def _timed(self, original: Callable[..., Any], part: str) -> Callable[..., Any]:
        cost = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not cost._training():
                return original(*args, **kwargs)
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                cost.seconds[part] += time.perf_counter() - started

        return timed

    def _timed_function(self, module: Any, name: str, part: str) -> None:
        setattr(module, name, self._timed(getattr(module, name), part))

    def _timed_method(self, cls: type, name: str, part: str) -> None:
        setattr(cls, name, self._timed(getattr(cls, name), part))

    def take(self) -> tuple[int, dict[str, float]]:
        taken = (self.events, dict(self.seconds))
        self.events = 0
        self.seconds = dict.fromkeys(PARTS, 0.0)
        return taken


@dataclass
class Sample:
    end_to_end: float
    training_phase: float
    train_call: float
    checkpoint: float  # of train_call: time inside Trainer._save_checkpoint
    train_cpu: float  # CPU seconds of the whole process (every thread) during trainer.train()
    step: float  # median seconds from one training step's start to the next's (everything between, our callbacks too)
    steps: int
    final_loss: float | None  # the same on both sides when they did the same work
    events: int = 0  # (b): events the training thread emitted
    parts: dict[str, float] = field(default_factory=dict)  # (b): seconds in each part of emit (PARTS)


class Timers:
    """Wall time of every SFTTrainer.train and Trainer._save_checkpoint call, for (a) and (b) alike,
    and the process's CPU time (all threads: torch's, the view's, the controller's) during train().

    CPU time is what a shared machine cannot inflate by descheduling us: on 2 busy cores the wall
    time of one run swung 46-132 s while the work was the same, so the CPU ratio is the one to read
    there; on a quiet machine the two agree.
    """

    def __init__(self) -> None:
        self.train: list[float] = []
        self.train_cpu: list[float] = []
        self.checkpoint: list[float] = []
        self.step_starts: list[float] = []
        import transformers
        import trl

        self._wrap(trl.SFTTrainer, "train", self.train, self.train_cpu)
        self._wrap(transformers.Trainer, "_save_checkpoint", self.checkpoint, None)
        self._mark(transformers.Trainer, "training_step", self.step_starts)

    @staticmethod
    def _mark(cls: type, name: str, sink: list[float]) -> None:
        original = getattr(cls, name)

        @functools.wraps(original)
        def marked(*args: Any, **kwargs: Any) -> Any:
            sink.append(time.perf_counter())
            return original(*args, **kwargs)

        setattr(cls, name, marked)

    @staticmethod
    def _wrap(cls: type, name: str, sink: list[float], cpu_sink: list[float] | None) -> None:
        original = getattr(cls, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started, cpu_started = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                sink.append(time.perf_counter() - started)
                if cpu_sink is not None:
                    cpu_sink.append(time.process_time() - cpu_started)

        setattr(cls, name, timed)

    def take(self) -> tuple[float, float, float, float]:
        """train() wall, checkpoint wall, train() CPU, and the median step: the median of the gaps between
        step starts, which a few steps slowed by another process on the machine do not move."""
        train, checkpoint, cpu = sum(self.train), sum(self.checkpoint), sum(self.train_cpu)
        gaps = [b - a for a, b in itertools.pairwise(self.step_starts)]
        step = statistics.median(gaps) if gaps else math.nan
        self.train.clear()
        self.checkpoint.clear()
        self.train_cpu.clear()
        self.step_starts.clear()
        return train, checkpoint, cpu, step


@contextlib.contextmanager
def quiet() -> Iterator[io.StringIO]:
    """Banners and warnings of both sides go to a buffer; shown only when a run fails."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield buffer
    except BaseException:
        sys.stderr.write(buffer.getvalue()[-5000:])
        raise


# ---------------------------------------------------------------------- (a) bare Unsloth + TRL
def run_bare(setup: Setup, out: Path, timers: Timers) -> Sample:
    """The script a user of Unsloth alone would write (settings as unsloth-nb maps its config)."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer
    from unsloth import FastLanguageModel
    from unsloth.chat_templates import train_on_responses_only

    begin = time.time()
    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=str(setup.model), max_seq_length=setup.max_seq_length, dtype=None, load_in_4bit=False
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
        max_seq_length=setup.max_seq_length,
    )
    texts = [tokenizer.apply_chat_template(r["messages"], tokenize=False) for r in demo_messages(setup.rows)]
    dataset = Dataset.from_list([{"text": t} for t in texts])
    on_gpu = torch.cuda.is_available()
    phase_start = time.time()
    trainer = SFTTrainer(
        model=model,
        processing_class=tokenizer,
        train_dataset=dataset,
        args=SFTConfig(
            output_dir=str(out / "checkpoints"),
            per_device_train_batch_size=setup.batch_size,
            gradient_accumulation_steps=1,
            learning_rate=setup.lr,
            warmup_steps=setup.warmup_steps,
            weight_decay=0.001,
            lr_scheduler_type="linear",
            optim="adamw_8bit",
            seed=3407,
            logging_steps=1,
            max_steps=setup.steps,
            max_length=setup.max_seq_length,
            dataset_text_field="text",
            packing=False,
            report_to="none",
            disable_tqdm=True,
            save_strategy="no",
            use_cpu=not on_gpu,
            bf16=model.dtype == torch.bfloat16,
            fp16=model.dtype == torch.float16,
        ),
    )
    trainer = train_on_responses_only(trainer, instruction_part="<|im_start|>user\n", response_part="<|im_start|>assistant\n")
    trainer.train()
    phase_end = time.time()
    model.save_pretrained(str(out / "adapter"))
    tokenizer.save_pretrained(str(out / "adapter"))
    end = time.time()
    train_call, checkpoint, cpu, step = timers.take()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    final_loss = float(losses[-1]) if losses else None
    return Sample(end - begin, phase_end - phase_start, train_call, checkpoint, cpu, step, trainer.state.global_step, final_loss)


# ---------------------------------------------------------------------- (b) the unsloth-nb job
def run_job(setup: Setup, out: Path, timers: Timers, cost: EventCost | None = None, with_view: bool = True) -> Sample:
    """``unsloth_nb.train`` with the job view displayed, as ``%unsloth_train`` shows it
    (``with_view=False``: no view, as the CLI and the Python API run it)."""
    import unsloth_nb
    from unsloth_nb.ui.view import JobView

    begin = time.time()
    job = unsloth_nb.train(setup.job_config(out))
    view = JobView(job) if with_view else None
    if view is not None:
        view.widget  # noqa: B018  (the widgets exist and the flusher runs, as in a notebook)
    job.wait()
    end = time.time()
    states = {e.data["state"]: e.time for e in job.events(kinds={"status"})}
    if job.state != "succeeded":
        raise RuntimeError(f"job {job.id} ended {job.state}: {job.error}")
    train_call, checkpoint, cpu, step = timers.take()
    steps = job.global_step
    if view is not None:
        view.close()
    events, parts = cost.take() if cost is not None else (0, {})
    return Sample(
        end - begin,
        states["saving"] - states["training"],
        train_call,
        checkpoint,
        cpu,
        step,
        steps,
        job.final_loss,
        events,
        parts,
    )


def run_job_without_view(setup: Setup, out: Path, timers: Timers, cost: EventCost | None = None) -> Sample:
    """(d): (b) with no job view: what the view's widgets, flusher and chart timer cost is (b) - (d)."""
    return run_job(setup, out, timers, cost, with_view=False)


def run_job_default_switch_interval(setup: Setup, out: Path, timers: Timers, cost: EventCost | None = None) -> Sample:
    """(c): (b) with the in-kernel backend's 1 ms switch interval left out (Python's default 5 ms)."""
    import unsloth_nb.backends.local as local

    original = local._responsive_kernel
    local._responsive_kernel = contextlib.nullcontext  # type: ignore[assignment]
    try:
        return run_job(setup, out, timers, cost)
    finally:
        local._responsive_kernel = original  # type: ignore[assignment]


# ---------------------------------------------------------------------- the comparison
@dataclass
class Comparison:
    setup: Setup
    bare: list[Sample]
    job: list[Sample]
    job_default_switch: list[Sample]
    job_no_view: list[Sample] = field(default_factory=list)

    def ratios(self, attribute: str, job: list[Sample] | None = None) -> Spread:
        samples = self.job if job is None else job
        return Spread([getattr(b, attribute) / getattr(a, attribute) for a, b in zip(self.bare, samples, strict=True)])

    def seconds(self, samples: list[Sample], attribute: str) -> Spread:
        return Spread([getattr(s, attribute) for s in samples])


def in_thread(fn: Callable[..., Sample], *args: Any) -> Sample:
    """Run ``fn`` in a fresh thread, as the in-kernel backend runs training; re-raise its error here."""
    outcome: list[Any] = []

    def body() -> None:
        try:
            outcome.append(fn(*args))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=body, name="bare-training")
    thread.start()
    thread.join()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def compare(
    setup: Setup,
    pairs: int,
    timers: Timers,
    scratch: Path,
    say: Callable[[str], None],
    bare_main_thread: bool = False,
    switch_interval_too: bool = False,
    cost: EventCost | None = None,
    no_view_too: bool = False,
) -> Comparison:
    bare = run_bare if bare_main_thread else functools.partial(in_thread, run_bare)
    runners: dict[str, Callable[[Setup, Path, Timers], Sample]] = {"a": bare, "b": functools.partial(run_job, cost=cost)}
    if switch_interval_too:
        runners["c"] = functools.partial(run_job_default_switch_interval, cost=cost)
    if no_view_too:
        runners["d"] = functools.partial(run_job_without_view, cost=cost)
    sides = "".join(runners)
    counter = 0

    def once(side: str) -> Sample:
        nonlocal counter
        counter += 1
        out = scratch / f"{setup.label}-{side}-{counter}"
        try:
            with quiet():
                sample = runners[side](setup, out, timers)
        finally:
            shutil.rmtree(out, ignore_errors=True)
            gc.collect()
        if sample.steps != setup.steps:
            raise RuntimeError(f"({side}) trained {sample.steps} steps, expected {setup.steps}")
        return sample

    say(f"{setup.label}: warm-up ({', '.join(sides)}; discarded)")
    for side in sides:
        once(side)
    samples: dict[str, list[Sample]] = {side: [] for side in "abcd"}
    for pair in range(pairs):
        order = sides if pair % 2 == 0 else sides[::-1]
        for side in order:
            samples[side].append(once(side))
        a, b = samples["a"][-1], samples["b"][-1]
        extra = "".join(
            f", {side} {samples[side][-1].train_call:.2f} s -> {samples[side][-1].train_call / a.train_call:.3f}"
            for side in "cd"
            if side in sides
        )
        cpu = " ".join(f"{side} {samples[side][-1].train_cpu:.1f}" for side in sides)
        step = " ".join(f"{side} {samples[side][-1].step:.3f}" for side in sides)
        say(
            f"{setup.label}: pair {pair + 1}/{pairs} ({order}): train() a {a.train_call:.2f} s, b {b.train_call:.2f} s "
            f"-> {b.train_call / a.train_call:.3f}{extra}; cpu s {cpu}; median step s {step}; end to end {a.end_to_end:.2f} / {b.end_to_end:.2f} s; "
            f"load {os.getloadavg()[0]:.1f}"
        )
    return Comparison(setup, samples["a"], samples["b"], samples["c"], samples["d"])


def table_rows(result: Comparison) -> list[Row]:
    label = f"{result.setup.label}, {result.setup.steps} steps"
    rows = []

    def row(name: str, attribute: str, job: list[Sample], target: bool, unit: str = " s", fmt: str = ".2f") -> None:
        ratio = result.ratios(attribute, job)
        rows.append(
            Row(
                [
                    label,
                    name,
                    result.seconds(result.bare, attribute).show(fmt, unit),
                    result.seconds(job, attribute).show(fmt, unit),
                    ratio.show(".3f"),
                    f"<= {TARGET}" if target else "-",
                ],
                ok=(ratio.median <= TARGET) if target else None,
            )
        )

    row("trainer.train(), wall", "train_call", result.job, True)
    row("trainer.train(), CPU of all threads", "train_cpu", result.job, True, " cpu-s")
    row("median step (start to next start)", "step", result.job, True, fmt=".3f")
    row("training phase (trainer built + train)", "training_phase", result.job, False)
    row("end to end (load .. adapter saved)", "end_to_end", result.job, False)
    if result.job_default_switch:
        row("trainer.train(), (c) job + view, Python's 5 ms switch interval", "train_call", result.job_default_switch, False)
        row("  same, CPU of all threads", "train_cpu", result.job_default_switch, False, " cpu-s")
        row("  same, median step", "step", result.job_default_switch, False, fmt=".3f")
    if result.job_no_view:
        row("trainer.train(), (d) job without a view (CLI, API)", "train_call", result.job_no_view, False)
        row("  same, CPU of all threads", "train_cpu", result.job_no_view, False, " cpu-s")
        row("  same, median step", "step", result.job_no_view, False, fmt=".3f")
    return rows


def breakdown_rows(result: Comparison) -> list[Row]:
    """(b)'s training-thread time in each part of emit, per run, and as a share of its train()."""
    runs = [s for s in result.job if s.parts]
    if not runs:
        return []
    label = f"{result.setup.label}, {result.setup.steps} steps"
    rows = [
        Row(
            [
                label,
                part,
                Spread([s.parts[part] * 1e3 for s in runs]).show(".1f", " ms"),
                Spread([s.parts[part] / s.events * 1e6 for s in runs if s.events]).show(".0f", " us"),
                Spread([s.parts[part] / s.train_call * 100 for s in runs]).show(".3f", " %"),
            ]
        )
        for part in PARTS
    ]
    total = [sum(s.parts.values()) for s in runs]
    rows.append(
        Row(
            [
                label,
                f"all of emit ({Spread([float(s.events) for s in runs]).show('.0f')} events per run)",
                Spread([t * 1e3 for t in total]).show(".1f", " ms"),
                Spread([t / s.events * 1e6 for t, s in zip(total, runs, strict=True) if s.events]).show(".0f", " us"),
                Spread([t / s.train_call * 100 for t, s in zip(total, runs, strict=True)]).show(".3f", " %"),
            ]
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny model only, 1 pair of 3 steps (CI smoke)")
    parser.add_argument("--pairs", type=int, default=5, help="a/b pairs per model (default 5)")
    parser.add_argument("--tiny-steps", type=int, default=30, help="steps on the tiny model (default 30)")
    parser.add_argument("--smollm2-steps", type=int, default=20, help="steps on SmolLM2-135M (default 20)")
    parser.add_argument("--no-smollm2", action="store_true", help="skip the SmolLM2-135M comparison")
    parser.add_argument("--no-tiny", action="store_true", help="skip the tiny-model comparison")
    parser.add_argument(
        "--switch-interval-too", action="store_true", help="add (c): the job with Python's default 5 ms switch interval"
    )
    parser.add_argument(
        "--no-view-too", action="store_true", help="add (d): the job without a view (what the view costs is b - d)"
    )
    parser.add_argument("--bare-main-thread", action="store_true", help="train (a) on the main thread instead of a worker thread")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--no-breakdown", action="store_true", help="(b) without the timers around the parts of EventLog.emit")
    args = parser.parse_args(argv)
    pairs = 1 if args.quick else args.pairs

    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    offline()
    SerialisingComm.install()
    scratch = Path(tempfile.mkdtemp(prefix="unsloth-nb-overhead-"))
    try:
        with quiet():
            model = tiny_model(scratch_dir("tiny-llama"))
            timers = Timers()
            cost = None if args.no_breakdown else EventCost()
        setups = (
            [] if args.no_tiny and not args.quick else [Setup("tiny Llama", model, 3 if args.quick else args.tiny_steps, rows=40)]
        )
        if not (args.quick or args.no_smollm2):
            from unsloth_nb.models import smollm2_path

            setups.append(Setup("SmolLM2-135M", smollm2_path(), args.smollm2_steps, rows=200))
        results = [
            compare(setup, pairs, timers, scratch, say, args.bare_main_thread, args.switch_interval_too, cost, args.no_view_too)
            for setup in setups
        ]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    rows: list[Row] = []
    for result in results:
        rows += table_rows(result)
    messages, wire = SerialisingComm.totals()
    same = all(
        a.final_loss is not None and b.final_loss is not None and abs(a.final_loss - b.final_loss) <= 1e-3 * abs(a.final_loss)
        for r in results
        for a, b in zip(r.bare, r.job, strict=True)
    )
    checkpoint = Spread([s.checkpoint for r in results for s in r.job])
    checkpoint_share = Spread([s.checkpoint / s.train_call * 100 for r in results for s in r.job])
    rows = print_table(
        f"unsloth-nb job (b) vs bare Unsloth + TRL (a): median (min-max) of {pairs} alternating pair(s), one warm process, "
        f"(a) on {'the main' if args.bare_main_thread else 'a worker'} thread",
        ["workload", "span", "(a) bare", "(b) job + view, or the variant named", "ratio to (a)", "target"],
        rows,
        note=(
            f"(b) includes the final resumable checkpoint unsloth-nb saves inside train() ({checkpoint.show('.2f', ' s')}, "
            f"{checkpoint_share.show('.1f', ' %')} of its train()) "
            f"and the view's widget traffic ({messages:,} messages, {wire / 1e6:.2f} MB on the wire over all (b) runs). "
            f"Same final loss on both sides of every pair (same work): {'yes' if same else 'NO'}."
        ),
    )
    parts = [row for result in results for row in breakdown_rows(result)]
    if parts:
        print_table(
            "Where (b) spends its extra time in the training thread: each part of EventLog.emit, per run "
            "(median (min-max) over the (b) runs)",
            ["workload", "part", "per run", "per event", "of train()"],
            parts,
        )
    return finish(rows, args.strict)


if __name__ == "__main__":
    raise SystemExit(main())
