"""The judge's throughput, and the answers' generation time, on loopback only.

Run: .venv/bin/python benchmarks/judge_throughput.py [--quick] [--strict]

1. Judged pairs per second through the real client (official ``openai`` SDK -> the fake OpenAI server) at a
   fixed fake latency (0.2 s per request) and concurrency 1 / 4 / 8 / 16. A pair is two requests (both orders).
   Each run uses a fresh cache, so every request really goes out; a second pass over the same pairs shows the
   cached re-run (0 requests). Target: at concurrency 8, at least 0.75 x the ideal 8 / (2 x 0.2) = 20 pairs/s
   (first measured at 0.79 x on a shared 2-core machine: about 50 ms of CPU per request in the SDK and the fake).
2. Generation time per answer on the tiny model: greedy, max_new_tokens 32, batched 8, fine-tuned and base
   (adapter off) answers, with a fresh LoRA adapter on the tiny Llama. No target: a machine-dependent figure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Row, demo_records, finish, offline, print_table, scratch_dir, tiny_model

LATENCY = 0.2


def judge_rate(pairs: int, concurrency: int) -> tuple[float, int, float, int]:
    """(pairs/s, requests sent, cached re-run seconds, re-run requests)."""
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.evaluate.answers import AnswerPair, AnswerSet
    from unsloth_nb.evaluate.judging import build_client, judge_answers
    from unsloth_nb.llm import DiskCache
    from unsloth_nb.testing import fake_llm
    from unsloth_nb.testing.fake_openai import FakeOpenAI

    records = demo_records()
    answers = AnswerSet(
        [
            AnswerPair(
                f"q{i}",
                f"{records[i % len(records)]['prompt']} (#{i})",
                records[i % len(records)]["completion"],
                "I do not know.",
                records[i % len(records)]["completion"],
            )
            for i in range(pairs)
        ],
        max_new_tokens=32,
        batch_size=8,
    )
    with FakeOpenAI(fake_llm.fixed_latency(LATENCY, fake_llm.key_facts())) as fake:
        judge = TrainConfig.from_dict(
            {"model": "m", "dataset": "d", "judge": {"base_url": fake.base_url, "concurrency": concurrency}}
        ).judge
        cache = DiskCache(Path(tempfile.mkdtemp(prefix="judge-bench-cache-")))
        started = time.perf_counter()
        report = judge_answers(answers, judge, client=build_client(judge, cache=cache), yes=True)
        seconds = time.perf_counter() - started
        sent = report.requests_sent
        fake.reset()
        started = time.perf_counter()
        again = judge_answers(answers, judge, client=build_client(judge, cache=cache), yes=True)
        rerun = time.perf_counter() - started
        assert fake.calls == 0 and again.requests_sent == 0
    return pairs / seconds, sent, rerun, again.requests_sent


def generation_per_answer(questions: int) -> tuple[float, int]:
    from unsloth_nb.engine.generation import judge_settings
    from unsloth_nb.evaluate.answers import answer_both
    from unsloth_nb.evaluate.holdout import EvalItem

    folder = tiny_model(scratch_dir("tiny-llama-demo"))
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(str(folder), max_seq_length=256, load_in_4bit=False, dtype=None)
    model = FastLanguageModel.get_peft_model(model, r=8, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    items = [EvalItem(f"q{i}", [{"role": "user", "content": r["prompt"]}]) for i, r in enumerate(demo_records(questions))]
    # the judge's decoding: greedy, as judged answers are by default
    answer_both(model, tokenizer, items[:2], settings=judge_settings("greedy", 4, None), batch_size=2)  # warm-up
    answers = answer_both(model, tokenizer, items, settings=judge_settings("greedy", 32, None), batch_size=8)
    return answers.seconds_per_answer, 2 * len(items)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer pairs and questions (a smoke run)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    offline()
    import os

    os.environ["OPENAI_API_KEY"] = "sk-benchmark-fake"
    # The smoke run's pairs are few: at concurrency 1 each pair is two 0.2 s requests in a row.
    pairs = 8 if args.quick else 80
    rows = []
    for concurrency in (1, 4, 8, 16):
        rate, sent, rerun, rerun_sent = judge_rate(pairs, concurrency)
        ideal = concurrency / (2 * LATENCY)
        ok = rate >= 0.75 * ideal if concurrency == 8 else None
        rows.append(
            Row([str(concurrency), f"{pairs}", f"{rate:.2f}", f"{ideal:.2f}", str(sent), f"{rerun:.2f} s / {rerun_sent}"], ok)
        )
    print_table(
        f"Judged pairs per second (fake OpenAI API, {LATENCY:.1f} s per request, two requests per pair)",
        ["concurrency", "pairs", "pairs/s", "ideal", "requests", "cached re-run (time / requests)"],
        rows,
    )
    per_answer, count = generation_per_answer(8 if args.quick else 32)
    gen = print_table(
        "Answer generation on the tiny model (greedy, max_new_tokens 32, batch 8, fine-tuned + base)",
        ["answers", "seconds per answer"],
        [Row([str(count), f"{per_answer:.3f}"])],
    )
    return finish(rows + gen, args.strict)


if __name__ == "__main__":
    sys.exit(main())
