"""The live loss chart: an append-only Plotly view of a job's metrics events.

Why not ``plotly.graph_objects.FigureWidget``: it resends every array on every
update (O(n²) bytes for a streamed curve) and ships a 5 MB bundle in each
widget's state. ``LossChart`` instead keeps a bounded, progressively coarser
copy of the history in Python and sends only what is new:

* **Bounded history.** Each table (train rows, eval rows) holds at most
  ``max_points`` rows. When it fills, neighbouring rows are merged pairwise
  (loss and tokens/s by their mean, the EMA and learning rate by their last
  value, so the smoothed curve stays the exact EMA at each plotted step) and the
  row width doubles. 100,000 steps become ~1,500 rows of 64 steps.
* **Deltas with a sequence number.** ``{"type": "delta", "seq": n, "traces":
  {table: {"x": [...], column: [...]}}}`` carries only completed rows not sent
  before; the front end appends them with ``Plotly.extendTraces``. A change of
  width, a new view or a gap the front end noticed (iopub drops messages under
  load) is answered with ``{"type": "snapshot", ...}``, the whole downsampled
  history. Every message takes the next ``seq``, so a lost snapshot is a gap too.
* **Throttled.** At most one message per ``interval`` (0.25 s): the add path
  flushes when due and a timer thread sends what is left, so updates are at most
  4 per second however fast a trainer logs.
* **Custom messages, not traits.** Data never enters a synced trait, so nothing
  grows in a saved widget state; the saved state is the small ESM and the spec.
* **plotly.js from the plotly package.** The first chart in a kernel process
  pushes ``plotly/package_data/plotly.min.js`` once as a binary buffer; the page
  keeps it on ``window``; a page that lacks it (reloaded) asks for it. No CDN.

Where widgets cannot render, the mimebundle still carries a small inline-SVG
picture and a text summary (nbconvert, GitHub, terminal IPython); a full
Plotly figure is :func:`static_figure` and a standalone file is :func:`write_loss_html`.
"""

from __future__ import annotations

import html
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.events import Event, EventLog

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["FLUSH_INTERVAL", "MAX_POINTS", "LossChart", "static_figure", "write_loss_html"]

log = logging.getLogger("unsloth_nb")

#: Seconds between two messages to the front end (≤ 4 updates per second).
FLUSH_INTERVAL = 0.25
#: Rows kept per table before neighbours are merged; what the browser draws at most.
MAX_POINTS = 2000
#: Weight of the past in the smoothed loss (debiased EMA, as TensorBoard draws it).
SMOOTHING = 0.95
TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
_SIGNIFICANT_DIGITS = 5
_PLOTLY_RESEND_SECONDS = 5.0
_STATIC = Path(__file__).with_name("static")

_MEAN = "mean"
_LAST = "last"
#: table -> column -> how a bucket of rows becomes one row.
_TABLES: dict[str, dict[str, str]] = {
    "train": {"loss": _MEAN, "ema": _LAST, "lr": _LAST, "tps": _MEAN},
    "eval": {"loss": _MEAN},
}


# ---------------------------------------------------------------------- numbers
def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _compact(value: float | None) -> float | int | None:
    """Round to 5 significant digits (what a screen can show) and drop a useless ``.0``."""
    if value is None:
        return None
    rounded = float(f"{value:.{_SIGNIFICANT_DIGITS}g}")
    if rounded.is_integer() and abs(rounded) < 1e15:
        return int(rounded)
    return rounded


class _Ema:
    """Debiased exponential moving average: no pull towards 0 at the start."""

    def __init__(self, smoothing: float) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.smoothing = smoothing
        self._biased = 0.0
        self._n = 0

    def update(self, value: float | None) -> float | None:
        if value is not None:
            self._biased = self.smoothing * self._biased + (1.0 - self.smoothing) * value
            self._n += 1
        return self.value

    @property
    def value(self) -> float | None:
        if self._n == 0:
            return None
        return self._biased / (1.0 - self.smoothing**self._n)


# ---------------------------------------------------------------------- the bounded table
class _Table:
    """Rows ``(x, column values)`` kept under ``cap`` by merging neighbours pairwise.

    Raw rows fill an open bucket of ``width`` rows; a full bucket becomes a
    completed row. Only completed rows are ever sent, so a row the front end has
    drawn never changes, which is what makes append-only deltas correct. Each
    mean column keeps its count of finite values so merges stay exact means.
    """

    def __init__(self, columns: dict[str, str], cap: int) -> None:
        if cap < 4 or cap % 2:
            raise ValueError(f"max_points must be an even number >= 4, got {cap}")
        self.columns = columns
        self.cap = cap
        self.width = 1
        self.raw_rows = 0
        self.sent = 0
        self.coarsened = False
        self.last_x = -math.inf
        self.x: list[float] = []
        self.values: dict[str, list[float | None]] = {c: [] for c in columns}
        self.counts: dict[str, list[int]] = {c: [] for c in columns}
        self._reset_open()

    def _reset_open(self) -> None:
        self._open_rows = 0
        self._open_x = 0.0
        self._open_sum = dict.fromkeys(self.columns, 0.0)
        self._open_count = dict.fromkeys(self.columns, 0)
        self._open_last: dict[str, float | None] = dict.fromkeys(self.columns)

    def accepts(self, x: float) -> bool:
        """Steps must grow: a replayed or resumed step already drawn is skipped."""
        return x > self.last_x

    def add(self, x: float, row: dict[str, float | None]) -> None:
        self.last_x = x
        self.raw_rows += 1
        self._open_rows += 1
        self._open_x = x
        for column, value in row.items():
            if value is None:
                continue
            self._open_sum[column] += value
            self._open_count[column] += 1
            self._open_last[column] = value
        if self._open_rows >= self.width:
            self._close_bucket()

    def seal(self) -> None:
        """Complete a partly filled bucket (the run ended), so its steps are drawn too."""
        if self._open_rows:
            self._close_bucket()

    def _open_as_row(self) -> tuple[float, dict[str, float | None], dict[str, int]]:
        values: dict[str, float | None] = {}
        counts: dict[str, int] = {}
        for column, how in self.columns.items():
            count = self._open_count[column]
            counts[column] = count
            if how == _MEAN:
                values[column] = self._open_sum[column] / count if count else None
            else:
                values[column] = self._open_last[column]
        return self._open_x, values, counts

    def _close_bucket(self) -> None:
        x, values, counts = self._open_as_row()
        self.x.append(x)
        for column in self.columns:
            self.values[column].append(values[column])
            self.counts[column].append(counts[column])
        self._reset_open()
        if len(self.x) >= self.cap:
            self._coarsen()

    def _coarsen(self) -> None:
        """Halve the rows by merging pairs; O(cap), once per doubling of the history."""
        n = len(self.x)
        merged_x = [self.x[i + 1] for i in range(0, n - 1, 2)]
        for column, how in self.columns.items():
            vals, cnts = self.values[column], self.counts[column]
            new_vals: list[float | None] = []
            new_cnts: list[int] = []
            for i in range(0, n - 1, 2):
                (a, ca), (b, cb) = (vals[i], cnts[i]), (vals[i + 1], cnts[i + 1])
                if how == _MEAN:
                    total = ca + cb
                    new_vals.append(((a or 0.0) * ca + (b or 0.0) * cb) / total if total else None)
                    new_cnts.append(total)
                else:
                    new_vals.append(b if cb else a)
                    new_cnts.append(max(ca, cb))
            if n % 2:  # a sealed short bucket can leave one row without a partner
                new_vals.append(vals[-1])
                new_cnts.append(cnts[-1])
            self.values[column], self.counts[column] = new_vals, new_cnts
        if n % 2:
            merged_x.append(self.x[-1])
        self.x = merged_x
        self.width *= 2
        self.sent = 0
        self.coarsened = True

    # -------------------------------------------------------------- payloads
    @property
    def unsent(self) -> int:
        return len(self.x) - self.sent

    def payload(self, start: int = 0, with_open: bool = False) -> dict[str, list[Any]]:
        """Columns of rows ``start:`` rounded for the wire: ``{"x": [...], column: [...]}``."""
        xs: list[Any] = [_compact(v) for v in self.x[start:]]
        columns: dict[str, list[Any]] = {c: [_compact(v) for v in self.values[c][start:]] for c in self.columns}
        if with_open and self._open_rows:
            x, values, _ = self._open_as_row()
            xs.append(_compact(x))
            for column in self.columns:
                columns[column].append(_compact(values[column]))
        return {"x": xs, **columns}


# ---------------------------------------------------------------------- figure spec
def _figure_spec(title: str | None, height: int) -> dict[str, Any]:
    """Traces and layout shared by the live widget and the static figure.

    ``table``/``column`` say where a trace's data lives; the rest is Plotly.
    Learning rate and tokens/s start hidden (legend click shows them); their
    axes follow their traces' visibility.
    """
    traces: list[dict[str, Any]] = [
        {"table": "train", "column": "loss", "name": "train loss", "mode": "lines", "line": {"color": "#9ec5f0", "width": 1}},
        {
            "table": "train",
            "column": "ema",
            "name": "train loss (smoothed)",
            "mode": "lines",
            "line": {"color": "#1f5fbf", "width": 2},
        },
        {"table": "eval", "column": "loss", "name": "eval loss", "mode": "markers", "marker": {"color": "#d62728", "size": 7}},
        {
            "table": "train",
            "column": "lr",
            "name": "learning rate",
            "mode": "lines",
            "yaxis": "y2",
            "visible": "legendonly",
            "line": {"color": "#2ca02c", "width": 1.5, "dash": "dot"},
        },
        {
            "table": "train",
            "column": "tps",
            "name": "tokens/s",
            "mode": "lines",
            "yaxis": "y3",
            "visible": "legendonly",
            "line": {"color": "#9467bd", "width": 1.5},
        },
    ]
    for trace in traces:
        trace.update(type="scatter", connectgaps=True, hovertemplate="%{y:.4g}")
    layout: dict[str, Any] = {
        "height": height,
        "margin": {"l": 56, "r": 24, "t": 64 if title else 8, "b": 40},
        "xaxis": {"title": {"text": "step"}, "zeroline": False},
        "yaxis": {"title": {"text": "loss"}, "zeroline": False, "automargin": True},
        "yaxis2": {
            "title": {"text": "learning rate"},
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "visible": False,
            "automargin": True,
            "tickformat": ".1e",
            "rangemode": "tozero",
        },
        "yaxis3": {
            "title": {"text": "tokens/s"},
            "overlaying": "y",
            "side": "right",
            "anchor": "free",
            "autoshift": True,
            "showgrid": False,
            "visible": False,
            "automargin": True,
            "rangemode": "tozero",
        },
        "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "font": {"size": 11}},
        "hovermode": "x unified",
        "uirevision": "unsloth-nb-loss",
    }
    if title:
        layout["title"] = {"text": title, "x": 0, "xanchor": "left", "yref": "container", "y": 0.98, "yanchor": "top"}
        layout["legend"]["y"] = 1.02
    return {"traces": traces, "layout": layout, "config": {"displaylogo": False, "responsive": True}}


#: Shown/hidden secondary axes follow a legend click; used in the standalone HTML file
#: (the widget's ESM does the same).
_AXIS_SYNC_JS = """
var gd = document.getElementById('{plot_id}');
function unslothNbSyncAxes() {
  var want = {};
  gd.data.forEach(function (t) {
    if (t.yaxis && t.yaxis !== 'y') {
      var key = 'yaxis' + t.yaxis.slice(1);
      want[key] = want[key] || t.visible === true || t.visible === undefined;
    }
  });
  var change = {};
  Object.keys(want).forEach(function (key) {
    if ((gd.layout[key] || {}).visible !== want[key]) { change[key + '.visible'] = want[key]; }
  });
  if (Object.keys(change).length) { Plotly.relayout(gd, change); }
}
gd.on('plotly_restyle', unslothNbSyncAxes);
"""


# ---------------------------------------------------------------------- the chart
class LossChart:
    """Loss curve of one job, live in a notebook and static elsewhere.

    Feed it metrics events with :meth:`add` / :meth:`add_many`, or :meth:`attach`
    it to an :class:`~unsloth_nb.events.EventLog` (past events are replayed, so a
    chart made after the run shows the whole history). Display it (``chart`` as
    the last expression of a cell) or embed :attr:`widget` in a layout.

    ``timer=False`` leaves trailing flushes to explicit :meth:`tick` / :meth:`flush`
    calls and ``clock`` replaces ``time.monotonic``: both exist so tests and
    benchmarks can drive the throttle deterministically.
    """

    def __init__(
        self,
        *,
        title: str | None = None,
        max_points: int = MAX_POINTS,
        smoothing: float = SMOOTHING,
        height: int = 320,
        interval: float = FLUSH_INTERVAL,
        timer: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.title = title
        self.interval = interval
        self._spec = _figure_spec(title, height)
        self._tables = {name: _Table(columns, max_points) for name, columns in _TABLES.items()}
        self._ema = _Ema(smoothing)
        self._latest: dict[str, float] = {}
        self._lock = threading.RLock()
        self._clock = clock
        self._use_timer = timer
        self._timer: threading.Timer | None = None
        self._bulk = False
        self._seq = -1
        self._need_snapshot = False
        self._last_flush = -math.inf
        self._plotly_sent_at = -math.inf
        self._widget: Any = None
        self._closed = False
        self._unsubscribe: Callable[[], None] | None = None

    # -------------------------------------------------------------- feeding
    def add(self, event: Event) -> None:
        """Take one event (non-metrics events are ignored, except a job's end, which flushes)."""
        with self._lock:
            ended = self._ingest(event)
            if self._bulk:
                return
        if ended:
            self.flush()
        else:
            self.tick()

    def add_many(self, events: Iterable[Event]) -> None:
        """Take many events and send them as one update."""
        ended = False
        with self._lock:
            for event in events:
                ended = self._ingest(event) or ended
        if ended:
            self.flush()
        else:
            self.tick()

    def attach(self, log: EventLog) -> LossChart:
        """Follow ``log``: its history now, then every new event as it is emitted."""
        self.detach()
        # Holding our lock through the replay makes a writer thread's new events wait
        # until the history is in, so rows arrive in step order.
        with self._lock:
            self._bulk = True
            try:
                self._unsubscribe = log.subscribe(self.add, replay=True)
            finally:
                self._bulk = False
        self.tick()
        return self

    def detach(self) -> None:
        """Stop following the log; the chart keeps what it has and stays on screen."""
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
            self.flush()

    def close(self) -> None:
        """Detach, stop the timer and close the widget (its views disappear)."""
        self.detach()
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            widget, self._widget = self._widget, None
        if widget is not None:
            widget.close()

    def _ingest(self, event: Event) -> bool:
        if event.kind == "status":
            if event.data.get("state") in TERMINAL_STATES:
                for table in self._tables.values():
                    table.seal()
                return True
            return False
        if event.kind != "metrics":
            return False
        data = event.data
        step = _finite(data.get("step"))
        if step is None:
            return False
        train, evals = self._tables["train"], self._tables["eval"]
        if any(data.get(key) is not None for key in ("loss", "learning_rate", "tokens_per_second")) and train.accepts(step):
            loss = _finite(data.get("loss"))
            row = {
                "loss": loss,
                "ema": self._ema.update(loss),
                "lr": _finite(data.get("learning_rate")),
                "tps": _finite(data.get("tokens_per_second")),
            }
            train.add(step, row)
        if data.get("eval_loss") is not None and evals.accepts(step):
            evals.add(step, {"loss": _finite(data.get("eval_loss"))})
        for key, value in data.items():
            number = _finite(value)
            if number is not None:
                self._latest[key] = number
        return False

    # -------------------------------------------------------------- sending
    def tick(self) -> bool:
        """Send pending rows if the last message is at least ``interval`` old; True if sent."""
        with self._lock:
            if not self._pending():
                return False
            wait = self._last_flush + self.interval - self._clock()
            if wait > 0:
                self._schedule(wait)
                return False
            return self._send_update()

    def flush(self) -> bool:
        """Send pending rows now, throttle or not (end of a run); True if something was sent."""
        with self._lock:
            return self._pending() and self._send_update()

    def _pending(self) -> bool:
        if self._widget is None or self._closed:
            return False
        return self._need_snapshot or any(t.coarsened or t.unsent for t in self._tables.values())

    def _send_update(self) -> bool:
        self._seq += 1
        if self._need_snapshot or any(t.coarsened for t in self._tables.values()):
            message = self.snapshot()
            self._need_snapshot = False
        else:
            traces = {name: t.payload(t.sent) for name, t in self._tables.items() if t.unsent}
            message = {"type": "delta", "seq": self._seq, "traces": traces}
        for table in self._tables.values():
            table.sent = len(table.x)
            table.coarsened = False
        self._last_flush = self._clock()
        self._widget.send(message)
        return True

    def snapshot(self) -> dict[str, Any]:
        """The whole downsampled history as the front end receives it on a resync."""
        with self._lock:
            return {
                "type": "snapshot",
                "seq": self._seq,
                "steps": self._tables["train"].raw_rows,
                "width": {name: t.width for name, t in self._tables.items()},
                "traces": {name: t.payload() for name, t in self._tables.items()},
            }

    def _schedule(self, wait: float) -> None:
        if not self._use_timer or self._timer is not None or self._closed:
            return
        timer = threading.Timer(wait, self._on_timer)
        timer.daemon = True
        self._timer = timer
        timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
        try:
            self.tick()
        except Exception as exc:  # a closed comm must not kill a thread silently mid-run
            log.warning("loss chart update failed: %s", exc)

    # -------------------------------------------------------------- widget
    @property
    def widget(self) -> Any:
        """The anywidget view (created on first use, then reused by every display)."""
        with self._lock:
            if self._widget is None:
                if self._closed:
                    raise RuntimeError("this LossChart is closed; make a new one")
                widget = _widget_class()(spec=self._spec)
                widget.on_msg(self._on_front_end_msg)
                self._widget = widget
                if _claim_first_plotly_push():
                    self._send_plotly()
                self._need_snapshot = True
                self._send_update()
            return self._widget

    def _on_front_end_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "resync":
            with self._lock:
                self._need_snapshot = True
            self.tick()
        elif kind == "plotly":
            with self._lock:
                if self._clock() - self._plotly_sent_at >= _PLOTLY_RESEND_SECONDS:
                    self._send_plotly()

    def _send_plotly(self) -> None:
        if self._widget is None:
            return
        self._plotly_sent_at = self._clock()
        self._widget.send({"type": "plotly"}, buffers=[_plotly_js()])

    # -------------------------------------------------------------- display
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        data: dict[str, Any] = {"text/plain": self.summary(), "text/html": self.static_html()}
        metadata: dict[str, Any] = {}
        if widgets_can_render():
            widget_data, metadata = self.widget._repr_mimebundle_()
            data.update({k: v for k, v in widget_data.items() if k != "text/plain"})
        return data, metadata

    def __repr__(self) -> str:
        return f"<{self.summary()}>"

    def summary(self) -> str:
        """One line of text progress: the latest step and values."""
        latest = self._latest
        if "step" not in latest:
            return "LossChart: no metrics yet"
        parts = [f"step {int(latest['step']):,}"]
        for key, label in (("loss", "loss"), ("eval_loss", "eval"), ("learning_rate", "lr")):
            if key in latest:
                parts.append(f"{label} {latest[key]:.4g}")
        ema = self._ema.value
        if ema is not None:
            parts.insert(2 if "loss" in latest else 1, f"smoothed {ema:.4g}")
        if "tokens_per_second" in latest:
            parts.append(f"{latest['tokens_per_second']:,.0f} tok/s")
        return "LossChart: " + " · ".join(parts)

    def static_html(self) -> str:
        """A small inline-SVG picture and the summary: renders without JavaScript or plotly.js."""
        with self._lock:
            train = self._tables["train"].payload(with_open=True)
            evals = self._tables["eval"].payload(with_open=True)
        return _svg_html(train, evals, self.summary(), self.title)

    def figure(self) -> go.Figure:
        """A plotly Figure of the history so far (downsampled as the widget shows it)."""
        import plotly.graph_objects as go

        with self._lock:
            tables = {name: t.payload(with_open=True) for name, t in self._tables.items()}
        traces = []
        for spec in self._spec["traces"]:
            attrs = {k: v for k, v in spec.items() if k not in ("table", "column", "type")}
            table = tables[spec["table"]]
            traces.append(go.Scatter(x=table["x"], y=table[spec["column"]], **attrs))
        return go.Figure(data=traces, layout=go.Layout(self._spec["layout"], template="none"))


# ---------------------------------------------------------------------- module helpers
@cache
def _widget_class() -> type:
    """Defined on first use so that ``import unsloth_nb.ui.chart`` needs no anywidget."""
    import anywidget
    import traitlets

    class LossChartWidget(anywidget.AnyWidget):  # type: ignore[misc]
        """Front end of a LossChart: data arrives by custom messages, never in synced state."""

        _esm = _STATIC / "chart.js"
        _css = _STATIC / "chart.css"
        spec = traitlets.Dict().tag(sync=True)

    return LossChartWidget


_plotly_push_lock = threading.Lock()
_plotly_pushed = False


def _claim_first_plotly_push() -> bool:
    """True once per kernel process: the first chart pushes plotly.js, later ones rely on the page."""
    global _plotly_pushed
    with _plotly_push_lock:
        first, _plotly_pushed = not _plotly_pushed, True
        return first


def _plotly_js() -> bytes:
    return (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()


def widgets_can_render() -> bool:
    """A kernel (ipykernel, or a test double) registered a comm implementation.

    A terminal IPython or a plain script leaves ``comm.create_comm`` at its
    default, which opens nothing; there only text and static HTML make sense.
    """
    try:
        import comm
    except ImportError:
        return False
    return comm.create_comm is not getattr(comm, "_create_comm", None)


# ---------------------------------------------------------------------- static output
def static_figure(
    events: Iterable[Event], *, title: str | None = None, max_points: int = MAX_POINTS, smoothing: float = SMOOTHING
) -> go.Figure:
    """A plotly Figure of a job's loss curve from its events (same look as the live chart)."""
    chart = LossChart(title=title, max_points=max_points, smoothing=smoothing, timer=False)
    chart.add_many(events)
    return chart.figure()


def write_loss_html(events: Iterable[Event], path: str | Path, *, title: str | None = "Training loss") -> Path:
    """Write a standalone HTML file of the loss curve with plotly.js embedded (works offline)."""
    figure = static_figure(events, title=title)
    figure.update_layout(height=480)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.write_html(
        target,
        include_plotlyjs=True,
        full_html=True,
        config={"displaylogo": False, "responsive": True},
        post_script=_AXIS_SYNC_JS,
    )
    return target


_SVG_W, _SVG_H = 640, 220
_SVG_MARGIN = {"l": 52, "r": 12, "t": 22, "b": 28}
_SVG_MAX_POINTS = 500


def _svg_html(train: dict[str, list[Any]], evals: dict[str, list[Any]], summary: str, title: str | None) -> str:
    """Inline SVG of loss, smoothed loss and eval points; a few KB, no scripts."""
    caption = f'<div style="font:12px sans-serif;color:#555">{html.escape(summary)}</div>'
    heading = f'<div style="font:bold 13px sans-serif">{html.escape(title)}</div>' if title else ""
    series = [
        (train["x"], train["loss"], "#9ec5f0", "line"),
        (train["x"], train["ema"], "#1f5fbf", "line"),
        (evals["x"], evals["loss"], "#d62728", "points"),
    ]
    finite_y = [y for _, ys, _, _ in series for y in ys if y is not None]
    finite_x = [x for xs, ys, _, _ in series for x, y in zip(xs, ys, strict=True) if y is not None]
    if not finite_y:
        return f'<div class="unsloth-nb-loss-static">{heading}{caption}</div>'
    x0, x1 = min(finite_x), max(finite_x)
    y0, y1 = min(finite_y), max(finite_y)
    pad = (y1 - y0) * 0.05 or abs(y1) * 0.1 or 1.0
    y0, y1 = y0 - pad, y1 + pad
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    m = _SVG_MARGIN
    pw, ph = _SVG_W - m["l"] - m["r"], _SVG_H - m["t"] - m["b"]

    def px(x: float) -> str:
        return f"{m['l'] + (x - x0) / (x1 - x0) * pw:.1f}"

    def py(y: float) -> str:
        return f"{m['t'] + (1 - (y - y0) / (y1 - y0)) * ph:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_SVG_W}" height="{_SVG_H}" viewBox="0 0 {_SVG_W} {_SVG_H}" '
        'style="font:11px sans-serif;background:#fff">',
        f'<rect x="{m["l"]}" y="{m["t"]}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>',
    ]
    for value in (y0 + pad, (y0 + y1) / 2, y1 - pad):
        parts.append(f'<text x="{m["l"] - 4}" y="{py(value)}" text-anchor="end" dominant-baseline="middle">{value:.3g}</text>')
    for value, anchor in ((x0, "start"), (x1, "end")):
        parts.append(f'<text x="{px(value)}" y="{_SVG_H - 10}" text-anchor="{anchor}">step {value:,.0f}</text>')
    for xs, ys, color, kind in series:
        stride = max(1, math.ceil(len(xs) / _SVG_MAX_POINTS))
        picked = [(x, y) for i, (x, y) in enumerate(zip(xs, ys, strict=True)) if (i % stride == 0 or i == len(xs) - 1)]
        if kind == "points":
            parts.extend(f'<circle cx="{px(x)}" cy="{py(y)}" r="3" fill="{color}"/>' for x, y in picked if y is not None)
            continue
        path, pen_down = [], False
        for x, y in picked:
            if y is None:
                continue  # connect across gaps, as the live chart does
            path.append(f"{'L' if pen_down else 'M'}{px(x)} {py(y)}")
            pen_down = True
        if path:
            parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="1.5"/>')
    legend = (("train loss", "#9ec5f0"), ("smoothed", "#1f5fbf"), ("eval loss", "#d62728"))
    for i, (label, color) in enumerate(legend):
        parts.append(f'<text x="{m["l"] + 4 + i * 110}" y="14" fill="{color}">■ {label}</text>')
    parts.append("</svg>")
    return f'<div class="unsloth-nb-loss-static">{heading}{"".join(parts)}{caption}</div>'
