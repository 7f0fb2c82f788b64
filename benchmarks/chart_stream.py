"""What streaming a long run's loss curve costs the notebook front end.

Feeds synthetic metrics events (a decaying, noisy loss; learning rate; tokens/s;
an eval point every 1,000 steps) through ``LossChart`` and counts every message
its widget sends, at the comm, where a kernel would put it on the wire.

    .venv/bin/python benchmarks/chart_stream.py            # 100,000 steps
    .venv/bin/python benchmarks/chart_stream.py --quick    # 10,000 steps (CI smoke)

Scenarios: a live run at 20 steps/s and at 1 step/s (slow runs send the most
messages: about one per new drawn row), a burst (a trainer logging as fast as it
can, real clock and timer thread), and a chart attached after the run (history
replay). "Chart data" is the JSON the kernel serialises (as jupyter_client does);
"wire" adds the Jupyter message envelope (header, parent header, signature).
plotly.js itself (4.8 MB, once per page) is reported separately. Exits non-zero
when a target is missed, so CI can run ``--quick``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import comm
from jupyter_client.session import Session

from unsloth_nb.jobrun.events import Event, EventLog
from unsloth_nb.ui.chart import FLUSH_INTERVAL, LossChart

MAX_BYTES = 2_000_000
MAX_RATE = 1 / FLUSH_INTERVAL


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Sent:
    at: float
    kind: str
    json_bytes: int
    wire_bytes: int
    buffer_bytes: int


class MeasuringComm:
    """The kernel end of a widget comm: serialises each message as a kernel would and keeps sizes."""

    kernel = "benchmark"
    session = Session(key=b"benchmark-key")
    parent = session.msg("execute_request", content={"code": "chart"})

    def __init__(self, clock: Callable[[], float], **kwargs: Any) -> None:
        self.comm_id = kwargs.get("comm_id") or uuid.uuid4().hex
        self.clock = clock
        self.sent: list[Sent] = []
        self.open_state_bytes = len(json.dumps(kwargs.get("data", {})))

    def on_msg(self, callback: Any) -> None:
        self.handler = callback

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        content = {"comm_id": self.comm_id, "data": data}
        payload = json.dumps(data, ensure_ascii=False, allow_nan=False)
        message = self.session.msg("comm_msg", content=content, parent=self.parent)
        frames = self.session.serialize(message)
        buffer_bytes = sum(len(memoryview(b)) for b in buffers or [])
        kind = data.get("content", {}).get("type", "?") if isinstance(data, dict) else "?"
        self.sent.append(Sent(self.clock(), kind, len(payload.encode()), sum(map(len, frames)) + buffer_bytes, buffer_bytes))


def install_comm(clock: Callable[[], float]) -> list[MeasuringComm]:
    opened: list[MeasuringComm] = []

    def create_comm(**kwargs: Any) -> MeasuringComm:
        opened.append(MeasuringComm(clock, **kwargs))
        return opened[-1]

    comm.create_comm = create_comm
    return opened


def event(step: int, total: int) -> Event:
    data: dict[str, Any] = {
        "step": step,
        "loss": 0.4 + 2.0 * math.exp(-step / (total / 8)) + 0.15 * math.sin(step * 12.9898) ** 2,
        "learning_rate": 2e-4 * (1 - step / total),
        "tokens_per_second": 9000.0 + 500 * math.sin(step / 50),
        "grad_norm": 0.8 + 0.3 * math.sin(step * 7.31) ** 2,  # drawn since issue 16
        "epoch": step / total,
    }
    if step % 1000 == 0:
        data["eval_loss"] = 0.45 + 2.0 * math.exp(-step / (total / 8))
    return Event("bench", step, float(step), "metrics", data)


@dataclass
class Run:
    name: str
    steps: int
    sent: list[Sent]
    update_cpu_us: list[float] = field(default_factory=list)
    seconds: float = 0.0
    state_bytes: int = 0

    @property
    def chart(self) -> list[Sent]:
        return [s for s in self.sent if s.kind in ("delta", "snapshot")]

    def chart_bytes(self) -> int:
        return sum(s.json_bytes for s in self.chart)

    def wire_bytes(self) -> int:
        return sum(s.wire_bytes for s in self.chart)

    def max_rate(self) -> float:
        """Most chart messages in any 1-second window."""
        times = [s.at for s in self.chart]
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= 1.0:
                lo += 1
            best = max(best, hi - lo + 1)
        return float(best)

    def min_gap(self) -> float:
        times = [s.at for s in self.chart]
        return min((b - a for a, b in itertools.pairwise(times)), default=math.inf)


def live(name: str, steps: int, seconds_per_step: float) -> Run:
    """A run logging at a steady rate, on a simulated clock (so a 28-hour run takes seconds)."""
    clock = Clock()
    opened = install_comm(clock)
    chart = LossChart(timer=False, clock=clock)
    chart.widget  # noqa: B018  (displayed before training starts)
    measuring = opened[-1]
    cpu: list[float] = []
    for step in range(1, steps + 1):
        clock.now += seconds_per_step
        e = event(step, steps)
        before = len(measuring.sent)
        t0 = time.process_time_ns()
        chart.add(e)
        spent = time.process_time_ns() - t0
        if len(measuring.sent) != before:
            cpu.append(spent / 1000)
    clock.now += FLUSH_INTERVAL
    chart.add(Event("bench", steps + 1, 0.0, "status", {"state": "succeeded"}))
    chart.close()
    return Run(name, steps, measuring.sent, cpu, state_bytes=measuring.open_state_bytes)


def burst(steps: int) -> Run:
    """A trainer logging as fast as it can: real clock, timer thread for the tail."""
    opened = install_comm(time.monotonic)
    chart = LossChart()
    chart.widget  # noqa: B018
    measuring = opened[-1]
    events = [event(step, steps) for step in range(1, steps + 1)]
    t0 = time.perf_counter()
    for e in events:
        chart.add(e)
    seconds = time.perf_counter() - t0
    time.sleep(FLUSH_INTERVAL * 2)  # let the timer send the tail
    chart.close()
    return Run("burst (real clock)", steps, measuring.sent, seconds=seconds)


def history(steps: int) -> Run:
    """A chart made after the run: one snapshot of the replayed log."""
    log = EventLog("bench")
    for step in range(1, steps + 1):
        e = event(step, steps)
        log.emit("metrics", **e.data)
    opened = install_comm(time.monotonic)
    t0 = time.perf_counter()
    chart = LossChart().attach(log)
    chart.widget  # noqa: B018
    seconds = time.perf_counter() - t0
    chart.close()
    return Run("attach after the run", steps, opened[-1].sent, seconds=seconds)


def per_update_work(history_sizes: list[int], rows: int, repeats: int) -> list[tuple[int, int, float, float, int]]:
    """CPU of one update carrying ``rows`` new drawn rows, at several history lengths.

    Returns (history, row width, median µs per update, median µs per add, bytes per update).
    """
    results = []
    for size in history_sizes:
        clock = Clock()
        opened = install_comm(clock)
        chart = LossChart(timer=False, clock=clock)
        chart.add_many(event(step, size) for step in range(1, size + 1))
        chart.widget  # noqa: B018
        measuring = opened[-1]
        width = chart.snapshot()["width"]["train"]
        step = size
        update_us, add_us, sizes = [], [], []
        for _ in range(repeats):
            for _ in range(rows * width):
                step += 1
                t0 = time.process_time_ns()
                chart.add(event(step, size))
                add_us.append((time.process_time_ns() - t0) / 1000)
            clock.now += FLUSH_INTERVAL
            before = len(measuring.sent)
            t0 = time.process_time_ns()
            chart.tick()
            update_us.append((time.process_time_ns() - t0) / 1000)
            sizes.extend(s.json_bytes for s in measuring.sent[before:])
        chart.close()
        results.append((size, width, statistics.median(update_us), statistics.median(add_us), int(statistics.median(sizes))))
    return results


def fmt_bytes(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 steps and fewer repeats (CI smoke)")
    parser.add_argument("--steps", type=int, default=None, help="logged steps per run (default 100,000)")
    args = parser.parse_args(argv)
    steps = args.steps or (10_000 if args.quick else 100_000)

    runs = [
        live("live, 20 steps/s", steps, 0.05),
        live("live, 1 step/s", steps, 1.0),
        burst(steps),
        history(steps),
    ]
    plotly_push = next((s for r in runs for s in r.sent if s.kind == "plotly"), None)

    print(f"LossChart streaming {steps:,} logged steps (5 traces; targets: chart data <= 2 MB, <= {MAX_RATE:g} updates/s)\n")
    header = f"{'scenario':<24}{'messages':>10}{'snapshots':>10}{'chart data':>12}{'wire':>10}{'largest':>10}{'max/s':>7}{'min gap':>9}"
    print(header + f"{'ok':>5}")
    print("-" * (len(header) + 5))
    failed = False
    for run in runs:
        chart = run.chart
        snapshots = sum(1 for s in chart if s.kind == "snapshot")
        largest = max(s.json_bytes for s in chart)
        ok = run.chart_bytes() <= MAX_BYTES and run.max_rate() <= MAX_RATE
        failed |= not ok
        gap = run.min_gap()
        print(
            f"{run.name:<24}{len(chart):>10,}{snapshots:>10}{fmt_bytes(run.chart_bytes()):>12}{fmt_bytes(run.wire_bytes()):>10}"
            f"{fmt_bytes(largest):>10}{run.max_rate():>7.0f}{(f'{gap:.2f}s' if gap < math.inf else '-'):>9}{'yes' if ok else 'NO':>5}"
        )
    if plotly_push is not None:
        print(
            f"\nplotly.js, pushed once per kernel (then cached on the page): {fmt_bytes(plotly_push.buffer_bytes)} (not chart data)"
        )
    burst_run = next(r for r in runs if r.name.startswith("burst"))
    print(f"burst fed {steps:,} events in {burst_run.seconds:.2f} s ({steps / burst_run.seconds:,.0f} events/s into the chart)")

    print("\nCPU per update (a message sent), live 20 steps/s run:")
    cpu = runs[0].update_cpu_us
    print(
        f"  median {statistics.median(cpu):.0f} µs, p95 {sorted(cpu)[int(len(cpu) * 0.95)]:.0f} µs, max {max(cpu):.0f} µs (max = a re-bucketing snapshot)"
    )

    sizes = [s for s in (1_000, 10_000, 100_000) if s <= steps] or [steps]
    work = per_update_work(sizes, rows=5, repeats=20 if args.quick else 100)
    print("\nPer-update work vs history length (each update carries 5 new drawn rows; target: flat):")
    print(f"{'history':>10}{'row width':>11}{'µs/update':>11}{'µs/add':>9}{'bytes/update':>14}")
    for size, width, update_us, add_us, nbytes in work:
        print(f"{size:>10,}{width:>11}{update_us:>11.0f}{add_us:>9.1f}{nbytes:>14,}")
    ratio = max(w[2] for w in work) / min(w[2] for w in work)
    print(f"  largest / smallest µs per update: {ratio:.2f}x across a {sizes[-1] // sizes[0]}x longer history")

    # For scale, the naive alternative: a FigureWidget resending every raw point (float32
    # buffers, 8 bytes per x/y pair, 4 line traces) at the same update times as the 20 steps/s run.
    live20 = runs[0]
    naive = sum(8 * 4 * min(steps, round(s.at / 0.05)) for s in live20.chart)
    print(
        f"\nFor scale: a FigureWidget resending all points (float32) at the same {len(live20.chart):,} updates: ~{fmt_bytes(naive)}"
    )
    print(f"Widget state (what a notebook saves when it stores widget state): {fmt_bytes(live20.state_bytes)} per chart")
    print("\nresult:", "all targets met" if not failed else "TARGET MISSED")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
