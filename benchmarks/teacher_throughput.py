"""The teacher's throughput and the batch-versus-live cost, on loopback only.

Run: .venv/bin/python benchmarks/teacher_throughput.py [--quick] [--strict]

1. Rows per second through the real path (``unsloth_nb.teacher.enhance_rows`` -> official ``anthropic`` SDK -> the
   fake Anthropic server) at a fixed fake latency (0.2 s per request) and concurrency 1 / 4 / 8 / 16, improve
   only (one request per row), a fresh cache each time; then the cached re-run of the same rows (0 requests).
   Target: at concurrency 8, at least 0.75 x the ideal 8 / 0.2 = 40 rows/s (the judge's rule).
2. Batch versus live on the same rows (improve + 2 paraphrases): dollars at the default model's list price,
   live requests against one Message Batch (fresh caches). Target: ratio 0.50 (+- 0.01): the batch rate is half.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Row, demo_records, finish, offline, print_table

LATENCY = 0.2


def _rows(n: int) -> list[dict]:
    records = demo_records()
    return [
        {
            "messages": [
                {"role": "user", "content": f"{records[i % len(records)]['prompt']} (#{i})"},
                {"role": "assistant", "content": records[i % len(records)]["completion"]},
            ]
        }
        for i in range(n)
    ]


def _run(base_url: str, rows: list[dict], **fields: object):
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.teacher.run import enhance_rows

    teacher = TrainConfig.from_dict({"model": "m", "dataset": "d", "teacher": {"base_url": base_url, **fields}}).teacher
    work = Path(tempfile.mkdtemp(prefix="teacher-bench-"))
    started = time.perf_counter()
    outcome = enhance_rows(rows, [], teacher, work)
    return outcome, time.perf_counter() - started


def throughput(n: int, concurrency: int) -> tuple[float, int, float, int]:
    from unsloth_nb.testing import fake_llm
    from unsloth_nb.testing.fake_anthropic import FakeAnthropic
    from unsloth_nb.testing.fake_teacher import teacher

    os.environ["UNSLOTH_NB_LLM_CACHE"] = tempfile.mkdtemp(prefix="teacher-bench-cache-")
    rows = _rows(n)
    with FakeAnthropic(fake_llm.fixed_latency(LATENCY, teacher())) as fake:
        options = {"operations": ["improve"], "batch": "off", "concurrency": concurrency}
        outcome, seconds = _run(fake.base_url, rows, **options)
        sent = fake.calls
        fake.reset()
        again, rerun = _run(fake.base_url, rows, **options)
        assert fake.calls == 0 and again.spend["requests_sent"] == 0
    assert outcome.status == "complete"
    return n / seconds, sent, rerun, again.spend["requests_sent"]


def batch_versus_live(n: int) -> tuple[float, float, int, int]:
    from unsloth_nb.testing.fake_anthropic import FakeAnthropic
    from unsloth_nb.testing.fake_teacher import teacher

    rows = _rows(n)
    with FakeAnthropic(teacher()) as fake:
        os.environ["UNSLOTH_NB_LLM_CACHE"] = tempfile.mkdtemp(prefix="teacher-bench-cache-")
        live, _ = _run(fake.base_url, rows, batch="off")
        live_calls = fake.calls
        fake.reset()
        os.environ["UNSLOTH_NB_LLM_CACHE"] = tempfile.mkdtemp(prefix="teacher-bench-cache-")
        batched, _ = _run(fake.base_url, rows, batch="on", poll_seconds=0)
        assert [r["messages"] for r in batched.rows] == [r["messages"] for r in live.rows]
    return live.usd, batched.usd, live_calls, int(fake.__dict__.get("batches_created", 0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows (a smoke run)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    offline()
    from unsloth_nb.testing.fake_anthropic import FakeAnthropic

    os.environ["ANTHROPIC_API_KEY"] = FakeAnthropic.api_key
    n = 40 if args.quick else 160
    rows = []
    for concurrency in (1, 4, 8, 16):
        rate, sent, rerun, rerun_sent = throughput(n if concurrency > 1 else n // 4, concurrency)
        ideal = concurrency / LATENCY
        ok = rate >= 0.75 * ideal if concurrency == 8 else None
        rows.append(Row([str(concurrency), f"{rate:.2f}", f"{ideal:.2f}", str(sent), f"{rerun:.2f} s / {rerun_sent}"], ok))
    print_table(
        f"Teacher rows per second (improve, fake Anthropic API, {LATENCY:.1f} s per request)",
        ["concurrency", "rows/s", "ideal", "requests", "cached re-run (time / requests)"],
        rows,
    )
    live, batched, calls, batches = batch_versus_live(24 if args.quick else 80)
    ratio = batched / live if live else float("nan")
    cost = print_table(
        "Batch versus live, same rows (improve + 2 paraphrases, claude-sonnet-4-5 list price)",
        ["requests", "live $", "batch $", "batches", "ratio"],
        [Row([str(calls), f"{live:.4f}", f"{batched:.4f}", str(batches), f"{ratio:.3f}"], abs(ratio - 0.5) <= 0.01)],
    )
    return finish(rows + cost, args.strict)


if __name__ == "__main__":
    sys.exit(main())
