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
  4 per second however fast a trainer logs. A chart inside a job view is made with
  ``autosend=False`` and sent by the view's own flush, right after the status line,
  so the two never show different steps (issue 16's screenshot 04: "step 3" above a
  curve at step 8).
* **Custom messages, not traits.** Data never enters a synced trait, so nothing
  grows in a saved widget state; the saved state is the small ESM and the spec.
* **plotly.js from the plotly package.** The first chart in a kernel process
  pushes ``plotly/package_data/plotly.min.js`` once as a binary buffer; the page
  keeps it on ``window``; a page that lacks it (reloaded) asks for it. No CDN.

Where widgets cannot render, the mimebundle still carries a small inline-SVG
picture and a text summary (nbconvert, GitHub, terminal IPython); a full
Plotly figure is :func:`static_figure` and a standalone file is :func:`write_loss_html`.

Each piece has its own module: :mod:`~unsloth_nb.ui.loss_series` keeps the bounded
history (no plotly, no widgets), :mod:`~unsloth_nb.ui.loss_figure` the traces and
layout, :mod:`~unsloth_nb.ui.loss_static` the exports that need no kernel. This
module is the live widget; it re-exports their public names.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.jobrun.events import Event, EventLog
from unsloth_nb.ui.loss_figure import HEIGHT, _build_figure, _figure_spec
from unsloth_nb.ui.loss_series import MAX_POINTS, SMOOTHING, LossHistory
from unsloth_nb.ui.loss_static import _svg_html, static_figure, write_loss_html

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["FLUSH_INTERVAL", "MAX_POINTS", "LossChart", "static_figure", "write_loss_html"]

log = logging.getLogger("unsloth_nb")

#: Seconds between two messages to the front end (≤ 4 updates per second).
FLUSH_INTERVAL = 0.25
_PLOTLY_RESEND_SECONDS = 5.0
_STATIC = Path(__file__).with_name("static")


# ---------------------------------------------------------------------- the chart
class LossChart:
    """Loss curve of one job, live in a notebook and static elsewhere.

    Feed it metrics events with :meth:`add` / :meth:`add_many`, or :meth:`attach`
    it to an :class:`~unsloth_nb.jobrun.events.EventLog` (past events are replayed, so a
    chart made after the run shows the whole history). Display it (``chart`` as
    the last expression of a cell) or embed :attr:`widget` in a layout.

    ``timer=False`` leaves trailing flushes to explicit :meth:`tick` / :meth:`flush`
    calls and ``clock`` replaces ``time.monotonic``: both exist so tests and
    benchmarks can drive the throttle deterministically. ``autosend=False`` sends
    only on :meth:`flush` (and on the page's requests): the owner paces the chart
    together with whatever it shows beside it.
    """

    def __init__(
        self,
        *,
        title: str | None = None,
        max_points: int = MAX_POINTS,
        smoothing: float | None = None,
        height: int = HEIGHT,
        interval: float = FLUSH_INTERVAL,
        timer: bool = True,
        clock: Callable[[], float] = time.monotonic,
        autosend: bool = True,
    ) -> None:
        self.title = title
        self.autosend = autosend
        self.interval = interval
        self._fixed_smoothing = smoothing
        self._spec = _figure_spec(title, height, smoothing)
        self._history = LossHistory(max_points, SMOOTHING if smoothing is None else smoothing)
        self._sent_smoothing: float | None = None
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
            ended = self._history.ingest(event)
            if self._bulk or not self.autosend:
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
                ended = self._history.ingest(event) or ended
        if not self.autosend:
            return
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
        if self.autosend:
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

    @property
    def smoothing(self) -> float:
        """The default smoothing of the smoothed curve: the one given, else one that suits the run's length."""
        return self._history.smoothing if self._fixed_smoothing is None else self._fixed_smoothing

    @property
    def has_metrics(self) -> bool:
        """Whether any step was logged (a job that failed before training has nothing to draw)."""
        with self._lock:
            return self._history.has_metrics

    def _pending(self) -> bool:
        if self._widget is None or self._closed:
            return False
        return self._need_snapshot or any(t.coarsened or t.unsent for t in self._history.tables.values())

    def _send_update(self) -> bool:
        self._seq += 1
        tables = self._history.tables
        if self._need_snapshot or any(t.coarsened for t in tables.values()):
            message = self.snapshot()
            self._need_snapshot = False
        else:
            traces = {name: t.payload(t.sent) for name, t in tables.items() if t.unsent}
            message = {"type": "delta", "seq": self._seq, "traces": traces}
            if self.smoothing != self._sent_smoothing:
                message["smoothing"] = self.smoothing
        for table in tables.values():
            table.sent = len(table.x)
            table.coarsened = False
        self._sent_smoothing = self.smoothing
        self._last_flush = self._clock()
        self._widget.send(message)
        return True

    def snapshot(self) -> dict[str, Any]:
        """The whole downsampled history as the front end receives it on a resync."""
        with self._lock:
            tables = self._history.tables
            return {
                "type": "snapshot",
                "seq": self._seq,
                "steps": tables["train"].raw_rows,
                "width": {name: t.width for name, t in tables.items()},
                "smoothing": self.smoothing,
                "traces": self._history.payloads(),
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
                widget = _widget_class()(spec=self._spec, layout={"width": "100%"}, tooltip="")
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
            # Answered at once when nobody else paces the chart (a finished job's view flushes no more).
            if self.autosend:
                self.tick()
            else:
                self.flush()
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
        latest = self._history.latest
        if "step" not in latest:
            return "LossChart: no metrics yet"
        parts = [f"step {int(latest['step']):,}"]
        for key, label in (("loss", "loss"), ("eval_loss", "eval"), ("learning_rate", "lr")):
            if key in latest:
                parts.append(f"{label} {latest[key]:.4g}")
        ema = self._history.ema.value
        if ema is not None:
            parts.insert(2 if "loss" in latest else 1, f"smoothed {ema:.4g}")
        if "tokens_per_second" in latest:
            parts.append(f"{latest['tokens_per_second']:,.0f} tok/s")
        return "LossChart: " + " · ".join(parts)

    def static_html(self) -> str:
        """A small inline-SVG picture and the summary: renders without JavaScript or plotly.js."""
        with self._lock:
            tables = self._history.payloads(with_open=True)
            width = self._history.tables["train"].width
        return _svg_html(tables["train"], tables["eval"], self.summary(), self.title, self.smoothing, width)

    def figure(self) -> go.Figure:
        """A plotly Figure of the history so far (downsampled as the widget shows it)."""
        with self._lock:
            tables = self._history.payloads(with_open=True)
            widths = {name: t.width for name, t in self._history.tables.items()}
        return _build_figure(self._spec, tables, smoothing=self.smoothing, widths=widths)


# ---------------------------------------------------------------------- module helpers
@cache
def _widget_class() -> type:
    """Defined on first use so that ``import unsloth_nb.ui.chart`` needs no anywidget."""
    import anywidget
    import traitlets

    class LossChartWidget(anywidget.AnyWidget):
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
