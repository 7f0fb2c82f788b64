"""LossChart driven in-process: the kernel side is real, the browser is a recording comm.

The comm is replaced where a kernel plugs in its own (``comm.create_comm``), the
same boundary ipywidgets' own tests use, so every message goes through the real
ipywidgets/anywidget send path. Throttling is tested with an injected clock:
no sleeps, no wall-clock assertions.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import comm
import pytest
from chart_page import draw_in_node, needs_node

from unsloth_nb.jobrun.events import Event, EventLog
from unsloth_nb.ui import chart as chart_module
from unsloth_nb.ui.chart import FLUSH_INTERVAL, LossChart, static_figure, write_loss_html
from unsloth_nb.ui.loss_series import SMOOTHING, default_smoothing, running_smoothing, smoothed

CHART_JS = Path(chart_module.__file__).with_name("static") / "chart.js"


class FrontEnd:
    """The browser's end of one widget comm: records what the kernel sends, can reply."""

    kernel = "a kernel"  # ipywidgets only sends when the comm has a kernel

    def __init__(self, clock: Callable[[], float], **open_args: Any) -> None:
        self.comm_id = open_args.get("comm_id") or uuid.uuid4().hex
        self.open_args = open_args
        self.clock = clock
        self.received: list[tuple[float, dict[str, Any], list[Any]]] = []
        self.arrived = threading.Event()
        self._handler: Callable[[dict[str, Any]], None] | None = None

    # the comm interface ipywidgets uses
    def on_msg(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self._handler = callback

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        json.dumps(data, allow_nan=False)  # what jupyter_client does: NaN would break the message
        self.received.append((self.clock(), data, list(buffers or [])))
        self.arrived.set()

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass

    # what a test looks at
    def custom(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Custom messages' content, optionally of one ``type``."""
        out = [d["content"] for _, d, _ in self.received if d.get("method") == "custom"]
        return [m for m in out if kind is None or m["type"] == kind]

    def chart_messages(self) -> list[dict[str, Any]]:
        return [m for m in self.custom() if m["type"] in ("snapshot", "delta")]

    def chart_bytes(self) -> int:
        """JSON bytes of chart data sent (plotly.js, a one-off library push, not counted)."""
        return sum(len(json.dumps(m)) for m in self.chart_messages())

    def reply(self, content: dict[str, Any]) -> None:
        """The page sends a custom message back (model.send in the ESM)."""
        assert self._handler is not None
        self._handler({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def front_ends(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> list[FrontEnd]:
    opened: list[FrontEnd] = []

    def create_comm(**kwargs: Any) -> FrontEnd:
        front = FrontEnd(clock, **kwargs)
        opened.append(front)
        return front

    monkeypatch.setattr(comm, "create_comm", create_comm)
    return opened


@pytest.fixture
def make_chart(clock: Clock) -> Iterator[Callable[..., LossChart]]:
    charts: list[LossChart] = []

    def make(**kwargs: Any) -> LossChart:
        kwargs.setdefault("timer", False)
        kwargs.setdefault("clock", clock)
        chart = LossChart(**kwargs)
        charts.append(chart)
        return chart

    yield make
    for chart in charts:
        chart.close()


def metrics(step: int, **data: Any) -> Event:
    data.setdefault("loss", 2.0 * math.exp(-step / 3000) + 0.05 * math.sin(step))
    return Event("job", step, float(step), "metrics", {"step": step, **data})


def show(chart: LossChart, front_ends: list[FrontEnd]) -> FrontEnd:
    """Create the chart's widget, as displaying it does, and return its front end."""
    chart.widget  # noqa: B018
    return front_ends[-1]


def apply_in_order(messages: list[dict[str, Any]]) -> dict[str, dict[str, list[Any]]]:
    """What a front end holds after applying snapshots and contiguous deltas."""
    tables: dict[str, dict[str, list[Any]]] = {}
    seq = None
    for msg in messages:
        if msg["type"] == "snapshot":
            tables = json.loads(json.dumps(msg["traces"]))
        else:
            assert seq is not None and msg["seq"] == seq + 1, "a gap in the delta sequence"
            for name, columns in msg["traces"].items():
                for key, values in columns.items():
                    tables.setdefault(name, {}).setdefault(key, []).extend(values)
        seq = msg["seq"]
    return tables


# ---------------------------------------------------------------------- protocol
def test_deltas_carry_increasing_seq_and_only_new_points(make_chart, front_ends, clock):
    chart = make_chart()
    front = show(chart, front_ends)
    assert front.chart_messages()[0] == chart.snapshot() | {"seq": 0}

    for step in range(1, 11):
        chart.add(metrics(step, learning_rate=1e-4))
    clock.advance(FLUSH_INTERVAL)
    chart.tick()
    for step in range(11, 16):
        chart.add(metrics(step, learning_rate=1e-4))
    clock.advance(FLUSH_INTERVAL)
    chart.tick()

    messages = front.chart_messages()
    assert [m["seq"] for m in messages] == list(range(len(messages)))
    deltas = [m for m in messages if m["type"] == "delta"]
    sent_x = [x for d in deltas for x in d["traces"]["train"]["x"]]
    assert sent_x == list(range(1, 16)), "every step once, none resent"
    assert deltas[-1]["traces"]["train"]["x"] == [11, 12, 13, 14, 15]
    assert set(deltas[-1]["traces"]["train"]) == {"x", "loss", "lr", "tps", "gn"}, "the page smooths; no EMA column travels"
    assert apply_in_order(messages) == chart.snapshot()["traces"]


def test_updates_are_throttled_to_one_per_interval(make_chart, front_ends, clock):
    chart = make_chart()
    front = show(chart, front_ends)

    for step in range(1, 10_001):  # a trainer logging as fast as it can: the clock does not move
        chart.add(metrics(step))
    assert len(front.chart_messages()) <= 2, "initial snapshot plus at most one delta"
    assert chart.tick() is False, "not due yet"
    clock.advance(FLUSH_INTERVAL / 2)
    assert chart.tick() is False
    clock.advance(FLUSH_INTERVAL / 2)
    assert chart.tick() is True, "the trailing rows go out once the interval has passed"
    assert chart.tick() is False, "nothing left to send"
    assert apply_in_order(front.chart_messages()) == chart.snapshot()["traces"]

    # 10 s of logging at 1 ms per step: at most one message per interval
    before = len(front.received)
    for step in range(10_001, 20_001):
        clock.advance(0.001)
        chart.add(metrics(step))
    times = [t for t, _, _ in front.received[before:]]
    assert len(times) <= 10 / FLUSH_INTERVAL + 1
    assert all(b - a >= FLUSH_INTERVAL - 1e-9 for a, b in itertools.pairwise(times))


def test_a_dropped_message_is_repaired_by_a_resync_snapshot(make_chart, front_ends, clock):
    chart = make_chart()
    front = show(chart, front_ends)
    for step in range(1, 301):
        clock.advance(0.05)
        chart.add(metrics(step))
    messages = front.chart_messages()
    lost = messages[3]
    assert lost["type"] == "delta"

    # The page saw seq 0..2, then 4: a gap. It asks for what it is missing.
    front.reply({"type": "resync", "have": lost["seq"] - 1})
    clock.advance(FLUSH_INTERVAL)
    chart.tick()

    snapshot = front.chart_messages()[-1]
    assert snapshot["type"] == "snapshot"
    assert snapshot["seq"] == messages[-1]["seq"] + 1
    assert snapshot["steps"] == 300
    assert snapshot["traces"]["train"]["x"] == list(range(1, 301)), "the full history, the lost steps included"
    assert snapshot["traces"] == apply_in_order(messages), "what the page would hold had nothing been lost"


def test_resolution_change_sends_a_snapshot_and_keeps_the_history_bounded(make_chart, front_ends, clock):
    chart = make_chart(max_points=100)
    front = show(chart, front_ends)
    for step in range(1, 1001):
        clock.advance(0.05)
        chart.add(metrics(step, learning_rate=step * 1e-6))
    chart.flush()

    snapshots = front.custom("snapshot")
    assert [s["width"]["train"] for s in snapshots] == [1, 2, 4, 8, 16]
    final = apply_in_order(front.chart_messages())
    assert len(final["train"]["x"]) <= 100
    assert final == chart.snapshot()["traces"]
    # rows of 16 steps: x is the bucket's last step, loss its mean, lr its last value
    x, loss, lr = final["train"]["x"], final["train"]["loss"], final["train"]["lr"]
    assert x[:3] == [16, 32, 48]
    raw = [metrics(s).data["loss"] for s in range(1, 17)]
    assert loss[0] == pytest.approx(sum(raw) / 16, rel=1e-4)
    assert lr[0] == pytest.approx(16e-6)


def test_smoothed_loss_is_the_exact_ema_and_buckets_weigh_their_steps():
    losses = [1.0, 3.0, 2.0, None, 5.0, 4.0, 4.5, 3.5]
    biased, n, expected = 0.0, 0, []
    for v in losses:
        if v is not None:
            biased, n = 0.9 * biased + 0.1 * v, n + 1
        expected.append(biased / (1 - 0.9**n))
    assert smoothed(losses, 0.9) == pytest.approx(expected)
    # a row that merges 2 steps weighs as 2: smoothing 0.9 over buckets is 0.81 per row
    assert smoothed([1.0, 2.0], 0.9, width=2) == pytest.approx(smoothed([1.0, 2.0], 0.81))


def test_the_default_smoothing_suits_the_run_length(make_chart, front_ends, clock):
    assert default_smoothing(40) == 0.75 and default_smoothing(2000) == 0.995 and default_smoothing(None) == SMOOTHING
    # the run: 1.84 falling to 0.45-0.65 by step 40; a fixed 0.95 still read 0.94 there
    losses = [1.84 - 1.29 * (step - 1) / 39 + 0.1 * (step % 3 - 1) for step in range(1, 41)]
    assert smoothed(losses, 0.95)[-1] > 0.9
    assert 0.45 <= smoothed(losses, default_smoothing(40))[-1] <= 0.7

    chart = make_chart()
    front = show(chart, front_ends)
    chart.add(Event("job", 0, 0.0, "progress", {"step": 0, "total_steps": 40}))
    chart.add(metrics(1))
    clock.advance(FLUSH_INTERVAL)
    chart.tick()
    assert front.chart_messages()[-1]["smoothing"] == running_smoothing(40, 1), "the page learns the run's smoothing"
    chart.add(metrics(2))
    clock.advance(FLUSH_INTERVAL)
    chart.tick()
    assert "smoothing" not in front.chart_messages()[-1], "and only once"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_page_smooths_exactly_as_python_does():
    values = [2.0, 1.5, None, 1.2, 0.9, 1.1, 0.7]
    driver = f"""
import {{ smooth, defaultSmoothing }} from {json.dumps(CHART_JS.as_uri())};
const state = {{ biased: 0, n: 0 }};
const first = smooth({json.dumps(values[:3])}, 0.8, 2, state);
const rest = smooth({json.dumps(values[3:])}, 0.8, 2, state);
console.log(JSON.stringify({{ ys: [...first, ...rest], d40: defaultSmoothing(40), d2000: defaultSmoothing(2000) }}));
"""
    out = json.loads(
        subprocess.run(["node", "--input-type=module", "-e", driver], capture_output=True, text=True, check=True).stdout
    )
    assert out["ys"] == pytest.approx(smoothed(values, 0.8, 2)), "incremental page smoothing = Python's"
    assert (out["d40"], out["d2000"]) == (default_smoothing(40), default_smoothing(2000))


def test_the_chart_spec_reads_steps_as_whole_numbers_and_panels_apart():
    from unsloth_nb.ui.loss_figure import PANELS, _figure_spec

    spec = _figure_spec("SmolLM2 · job 1", 460)
    layout = spec["layout"]
    assert layout["xaxis"]["tickformat"] == "d"
    assert layout["xaxis"]["unifiedhovertitle"]["text"].startswith("step ")
    assert layout["hoversubplots"] == "axis"
    assert [c for c, *_ in PANELS] == ["lr", "tps", "gn"]
    axes = {t["column"]: t.get("yaxis", "y") for t in spec["traces"]}
    assert len({axes["lr"], axes["tps"], axes["gn"], "y"}) == 4, "lr, tokens/s and grad norm each have a panel"
    domains = [layout["yaxis" + (str(i) if i > 1 else "")]["domain"] for i in range(1, 5)]
    for (lo1, _hi1), (_lo2, hi2) in itertools.pairwise(domains):
        assert hi2 < lo1, "panels do not overlap"
    assert layout["title"]["text"] == "SmolLM2 · job 1"

    few = static_figure([metrics(step, grad_norm=1.0) for step in range(1, 4)])
    assert few.layout.xaxis.dtick == 1, "3 steps: ticks 1, 2, 3, never 1.5"


def test_the_end_of_a_job_sends_the_last_partial_row(make_chart, front_ends, clock):
    chart = make_chart(max_points=8)
    front = show(chart, front_ends)
    chart.add_many(metrics(step) for step in range(1, 22))  # rows of 4 steps by now: step 21 waits in an open bucket
    chart.add(Event("job", 22, 22.0, "status", {"state": "succeeded"}))
    assert front.chart_messages()[-1]["traces"]["train"]["x"][-1] == 21
    assert apply_in_order(front.chart_messages()) == chart.snapshot()["traces"]


def test_eval_loss_is_its_own_table_and_nan_goes_out_as_null(make_chart, front_ends, clock):
    chart = make_chart()
    front = show(chart, front_ends)
    chart.add(metrics(1, loss=float("nan")))
    chart.add(Event("job", 2, 2.0, "metrics", {"step": 1, "eval_loss": 1.25}))
    chart.add(Event("job", 3, 3.0, "log", {"message": "ignored"}))
    clock.advance(FLUSH_INTERVAL)
    chart.tick()
    delta = front.custom("delta")[-1]
    assert delta["traces"]["train"]["loss"] == [None]
    assert delta["traces"]["eval"] == {"x": [1], "loss": [1.25]}


# ---------------------------------------------------------------------- event log
def test_attach_replays_the_history_and_follows_new_events(make_chart, front_ends, clock):
    log = EventLog("job-1")
    for step in range(1, 5001):
        log.emit("metrics", step=step, loss=1.0 / step, learning_rate=2e-4)
    chart = make_chart().attach(log)
    front = show(chart, front_ends)

    first = front.chart_messages()[0]
    assert first["type"] == "snapshot" and first["steps"] == 5000
    assert first["traces"]["train"]["x"][-1] == 5000
    assert len(first["traces"]["train"]["x"]) <= 2000

    clock.advance(FLUSH_INTERVAL)
    for step in range(5001, 5005):
        log.emit("metrics", step=step, loss=0.1)
    log.emit("status", state="succeeded")
    assert apply_in_order(front.chart_messages())["train"]["x"][-1] == 5004

    chart.detach()
    log.emit("metrics", step=6000, loss=0.1)
    assert chart.snapshot()["steps"] == 5004


def test_a_chart_fed_from_a_training_thread_flushes_the_tail_by_timer(front_ends):
    chart = LossChart()  # real clock and timer thread
    try:
        front = show(chart, front_ends)
        log = EventLog("job-2")
        chart.attach(log)
        writer = threading.Thread(target=lambda: [log.emit("metrics", step=s, loss=1.0) for s in range(1, 501)])
        writer.start()
        writer.join()

        def last_step_shown() -> int:
            return (apply_in_order(front.chart_messages()).get("train", {}).get("x") or [0])[-1]

        while last_step_shown() != 500:  # no new events come: only the timer can send the rest
            front.arrived.clear()
            if last_step_shown() != 500:
                assert front.arrived.wait(timeout=30), "the timer thread never sent the last rows"
    finally:
        chart.close()


# ---------------------------------------------------------------------- bytes
def test_100k_steps_cost_under_2_mb(make_chart, front_ends, clock):
    chart = make_chart()
    front = show(chart, front_ends)
    for step in range(1, 100_001):
        clock.advance(0.05)  # 20 steps/s: a 83-minute run
        chart.add(metrics(step, learning_rate=2e-4 * (1 - step / 100_000), tokens_per_second=9000 + step % 97))
    chart.add(Event("job", 100_001, 0.0, "status", {"state": "succeeded"}))

    assert front.chart_bytes() <= 2_000_000
    final = apply_in_order(front.chart_messages())
    assert final == chart.snapshot()["traces"]
    assert 1000 <= len(final["train"]["x"]) <= 2000
    assert final["train"]["x"][-1] == 100_000


def test_saved_widget_state_holds_no_data_and_no_plotly_js(make_chart, front_ends, clock):
    chart = make_chart()
    chart.add_many(metrics(step) for step in range(1, 3000))
    front = show(chart, front_ends)
    state = front.open_args["data"]["state"]
    assert set(state) >= {"_esm", "_css", "spec"}
    assert len(json.dumps(state)) < 40_000
    assert "plotly.js v" not in state["_esm"]


def test_plotly_js_comes_from_the_plotly_package_once_per_kernel_and_on_request(make_chart, front_ends, monkeypatch):
    monkeypatch.setattr(chart_module, "_plotly_pushed", False)  # as in a fresh kernel process
    first = show(make_chart(), front_ends)
    second = show(make_chart(), front_ends)

    (pushed,) = [buffers for _, data, buffers in first.received if data["content"]["type"] == "plotly"]
    assert bytes(pushed[0]).startswith(b"/**\n* plotly.js v")
    assert second.custom("plotly") == [], "the page already has it"

    second.reply({"type": "plotly"})  # a reloaded page asks
    second.reply({"type": "plotly"})  # twice: served once
    assert len(second.custom("plotly")) == 1


# ---------------------------------------------------------------------- display
def test_mimebundle_has_the_widget_and_a_static_fallback(make_chart, front_ends):
    chart = make_chart(title="demo")
    chart.add_many(metrics(step) for step in range(1, 201))
    chart.add_many(Event("job", 0, 0.0, "metrics", {"step": step, "eval_loss": 1.0}) for step in (50, 100, 150, 200))
    data, _ = chart._repr_mimebundle_()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == chart.widget.model_id
    assert "<svg" in data["text/html"] and "<script" not in data["text/html"]
    assert "cdn" not in data["text/html"].lower()
    assert data["text/plain"].startswith("LossChart: step 200 · loss ")
    assert len(data["text/html"]) < 30_000


def test_without_a_kernel_only_text_and_static_html_are_shown(clock, monkeypatch):
    monkeypatch.setattr(comm, "create_comm", comm._create_comm)  # as in a terminal IPython or a script
    chart = LossChart(timer=False, clock=clock)
    assert chart._repr_mimebundle_()[0]["text/plain"] == "LossChart: no metrics yet"
    chart.add(metrics(1, loss=0.5, learning_rate=2e-4, tokens_per_second=1234.4))
    data, _ = chart._repr_mimebundle_()
    assert set(data) == {"text/plain", "text/html"}
    assert data["text/plain"] == "LossChart: step 1 · loss 0.5 · smoothed 0.5 · lr 0.0002 · 1,234 tok/s"
    assert chart._widget is None


def test_static_figure_and_standalone_html_work_offline(tmp_path):
    events = [metrics(step, learning_rate=1e-4, eval_loss=0.9 if step == 500 else None) for step in range(1, 1001)]
    figure = static_figure(events, title="run")
    assert [t.name for t in figure.data] == ["train loss", "train loss (smoothed)", "eval loss", "learning rate"]
    assert list(figure.data[0].x)[-1] == 1000
    assert list(figure.data[2].y) == [0.9]
    no_eval = static_figure([metrics(step) for step in range(1, 50)])
    assert "eval loss" not in [t.name for t in no_eval.data], "no legend entry for an evaluation that never ran"
    assert "eval loss" not in chart_module.LossChart().static_html()

    path = write_loss_html(events, tmp_path / "loss.html")
    text = path.read_text()
    assert "plotly.js v" in text, "plotly.js is embedded"
    assert re.search(r"<script[^>]*\bsrc=", text) is None, "no script is loaded from anywhere"


def test_importing_the_chart_loads_no_widget_or_plotting_library():
    code = "import sys, unsloth_nb.ui.chart; print([m for m in ('plotly', 'anywidget', 'ipywidgets') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------- the real front-end store
def run_front_end_store(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply messages with the ESM's own createStore under node; return its state and requests."""
    driver = f"""
import {{ createStore }} from {json.dumps(CHART_JS.as_uri())};
let input = "";
for await (const chunk of process.stdin) input += chunk;
const store = createStore({{ now: () => 0 }});
const requests = [];
for (const msg of JSON.parse(input)) {{
  const result = store.apply(msg);
  if (result.request) requests.push(result.request);
}}
console.log(JSON.stringify({{ seq: store.seq, tables: store.tables, requests, points: store.points() }}));
"""
    proc = subprocess.run(
        ["node", "--input-type=module", "-e", driver], input=json.dumps(messages), capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_esm_store_detects_the_gap_asks_once_and_heals_from_the_snapshot(make_chart, front_ends, clock):
    chart = make_chart(max_points=200)
    front = show(chart, front_ends)
    for step in range(1, 1001):
        clock.advance(0.05)
        chart.add(metrics(step))
    messages = front.chart_messages()
    lost = next(i for i, m in enumerate(messages) if i > 5 and m["type"] == "delta")
    received = messages[:lost] + messages[lost + 1 :]

    broken = run_front_end_store(received)
    assert broken["requests"] == [{"type": "resync", "have": messages[lost - 1]["seq"]}]

    front.reply(broken["requests"][0])
    clock.advance(FLUSH_INTERVAL)
    chart.tick()
    healed = run_front_end_store([*received, front.chart_messages()[-1]])
    assert healed["tables"] == chart.snapshot()["traces"]
    assert healed["seq"] == chart.snapshot()["seq"]
    assert healed["points"] == len(chart.snapshot()["traces"]["train"]["x"])

    in_order = run_front_end_store(messages)
    assert in_order["requests"] == [] and in_order["tables"] == chart.snapshot()["traces"]


def test_a_stopped_run_keeps_the_smoothing_it_was_drawn_with():
    from unsloth_nb.ui.loss_series import LossHistory

    history = LossHistory()
    history.ingest(Event("job", 0, 0.0, "progress", {"step": 1, "total_steps": 2000}))
    for step in range(1, 9):
        history.ingest(metrics(step))
    assert history.smoothing == running_smoothing(2000, 8) < default_smoothing(2000), "while it runs: still young"
    history.ingest(Event("job", 9, 9.0, "status", {"state": "cancelled"}))
    assert history.smoothing == running_smoothing(2000, 8) < default_smoothing(2000), "stopped at step 8: drawn as it was"
    unplanned = LossHistory()
    for step in range(1, 25):
        unplanned.ingest(metrics(step))
    assert unplanned.smoothing == SMOOTHING
    unplanned.ingest(Event("job", 99, 99.0, "status", {"state": "succeeded"}))
    assert unplanned.smoothing == default_smoothing(24), "no plan: the steps it ran decide, once it ended"


def test_a_run_is_smoothed_for_its_planned_length_from_its_first_step(make_chart, front_ends, clock):
    """Issue 16, screenshot 04: a 2,000-step run drawn at 0.995 from step 1 showed at step 8 the mean of all
    eight losses, far above the raw line. The planned length (the first progress event's total_steps) sets where
    the smoothing goes; a young run gets there in a few doublings, and a short run has its own from the start."""
    assert [running_smoothing(40, s) for s in (1, 16, 17, 33, 40)] == [0.375, 0.375, 0.688, 0.75, default_smoothing(40)]
    assert running_smoothing(2000, 8) == running_smoothing(40, 8) and running_smoothing(2000, 1500) == default_smoothing(2000)
    assert running_smoothing(None, 8) == SMOOTHING, "no plan yet"

    def draw(total: int, steps: int) -> tuple[list[dict[str, Any]], float]:
        chart = make_chart()
        front = show(chart, front_ends)
        for step in range(1, steps + 1):
            chart.add(Event("job", 2 * step, float(step), "progress", {"step": step, "total_steps": total}))
            chart.add(metrics(step, loss=6.25 - 0.01 * step))
            clock.advance(FLUSH_INTERVAL)
            chart.tick()
        return front.chart_messages(), chart.smoothing

    messages, smoothing = draw(40, 3)
    assert "smoothing" in messages[1] and messages[1]["traces"]["train"]["x"] == [1], "the first step comes with it"
    assert [m["smoothing"] for m in messages[1:] if "smoothing" in m] == [0.375], "light from the start"
    losses = [6.25 - 0.01 * step for step in range(1, 9)]
    messages, smoothing = draw(2000, 8)
    assert smoothed(losses, smoothing)[-1] - losses[-1] < 0.01, "at step 8 the smoothed line is near the raw one"
    assert smoothed(losses, 0.995)[-1] - losses[-1] > 0.03, "where 0.995 lagged 3.5 steps behind"

    messages, smoothing = draw(2000, 2000)
    changes = [m["smoothing"] for m in messages[1:] if m["type"] == "delta" and "smoothing" in m]
    assert changes == sorted(changes) and len(changes) <= 8, f"a few redraws, not one per step: {changes}"
    assert smoothing == default_smoothing(2000)


@needs_node
def test_the_page_draws_the_live_chart_smoothed_as_python_does(make_chart, front_ends, clock):
    chart = make_chart()
    front = show(chart, front_ends)
    losses = []
    for step in range(1, 151):
        chart.add(Event("job", 2 * step, float(step), "progress", {"step": step, "total_steps": 150}))
        chart.add(metrics(step))
        losses.append(metrics(step).data["loss"])
        clock.advance(FLUSH_INTERVAL / 3)
        chart.tick()
    chart.add(Event("job", 999, 999.0, "status", {"state": "succeeded"}))
    page = draw_in_node(chart._spec, front.chart_messages())
    assert page["smoothing"] == chart.smoothing
    raw, smooth = page["drawn"][0], page["drawn"][1]
    assert raw["x"] == list(range(1, 151)) and smooth["x"] == raw["x"]
    assert smooth["y"][0] == pytest.approx(raw["y"][0]), "the smoothed line starts on the first raw point"
    assert smooth["y"] == pytest.approx(smoothed(raw["y"], chart.smoothing), rel=1e-9)


@needs_node
def test_a_first_step_alone_is_drawn_as_a_point_not_an_empty_chart(make_chart):
    chart = make_chart()
    chart.add(metrics(1))
    first = draw_in_node(chart._spec, [chart.snapshot()])["drawn"]
    assert first[0]["mode"] == first[1]["mode"] == "lines+markers", "one point draws no line: it gets a marker"
    assert first[2]["mode"] == "markers", "eval points stay markers"
    chart.add(metrics(2))
    later = draw_in_node(chart._spec, [chart.snapshot()])["drawn"]
    assert later[0]["mode"] == later[1]["mode"] == "lines", "two points: a plain line again"
