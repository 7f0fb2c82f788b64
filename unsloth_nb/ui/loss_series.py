"""The data side of the loss chart: metrics events in, a bounded, downsampled history out.

Split from :mod:`unsloth_nb.ui.chart` so that the history (the smoothed loss, the
progressively coarser tables and what they put on the wire) has one home that the
live widget and the static exports (:mod:`unsloth_nb.ui.loss_static`) both build
on, and can be read and tested without a widget: this module imports no plotly,
ipywidgets or anywidget, and nothing from the widget side.
"""

from __future__ import annotations

import math
from typing import Any

from unsloth_nb.jobrun.events import Event
from unsloth_nb.jobrun.lifecycle import TERMINAL_STATES

__all__ = [
    "EARLY_HORIZON",
    "MAX_POINTS",
    "SMOOTHING",
    "TERMINAL_STATES",
    "LossHistory",
    "default_smoothing",
    "running_smoothing",
    "smoothed",
]

#: Rows kept per table before neighbours are merged; what the browser draws at most.
MAX_POINTS = 2000
#: Weight of the past in the smoothed loss when the run's length is not known yet (debiased
#: EMA, as TensorBoard draws it); :func:`default_smoothing` picks one that suits the run.
SMOOTHING = 0.6
_SIGNIFICANT_DIGITS = 5
#: Steps a young run is smoothed as if it were this long (at most its planned length): 0.375, a window of
#: under two steps, so the smoothed line follows the first steps instead of averaging them all.
EARLY_HORIZON = 16

_MEAN = "mean"
_LAST = "last"
#: table -> column -> how a bucket of rows becomes one row. The smoothed loss is not a column:
#: whoever draws computes it from ``loss`` with the smoothing the user picked (:func:`smoothed`).
_TABLES: dict[str, dict[str, str]] = {
    "train": {"loss": _MEAN, "lr": _LAST, "tps": _MEAN, "gn": _MEAN},
    "eval": {"loss": _MEAN},
}


def default_smoothing(total_steps: float | None) -> float:
    """A smoothing whose window is about a tenth of the run: 0.75 for 40 steps, 0.995 for 2,000.

    A fixed 0.95 (a 20-step window) still read 0.94 at step 40 of a run whose raw loss was
    0.45-0.65; a tenth of the run follows a short run and still calms a long one.
    """
    if not total_steps or total_steps <= 0:
        return SMOOTHING
    return round(min(max(1.0 - 10.0 / float(total_steps), 0.0), 0.995), 3)


def running_smoothing(total_steps: float | None, steps_so_far: float | None) -> float:
    """The smoothing of a run still going: a tenth of its planned length, reached as the run grows.

    A 2,000-step run drawn at 0.995 from its first step shows, at step 8, the mean of all eight
    losses, far above the raw line (issue 16's screenshot 04); any window longer than the steps
    so far does. So a run is smoothed as if it were ``EARLY_HORIZON`` steps long, then the horizon
    doubles each time the steps pass it, up to the planned length: the window stays about a tenth
    of the steps drawn. A 40-step run goes 0.375 → 0.688 → 0.75 (its own), a 2,000-step one
    0.375 → … → 0.99 → 0.995: seven redraws in a run, not one per step.
    """
    if not total_steps or total_steps <= 0:
        return default_smoothing(None)
    horizon = float(EARLY_HORIZON)
    while steps_so_far and horizon < steps_so_far:
        horizon *= 2
    return default_smoothing(min(float(total_steps), horizon))


def smoothed(values: list[Any], smoothing: float, width: int = 1) -> list[float | None]:
    """Debiased EMA of ``values`` (None skipped); rows that each merge ``width`` steps weigh as many.

    The same arithmetic as ``smooth`` in ``static/chart.js``, so a static export matches the page.
    """
    weight = smoothing**width
    out: list[float | None] = []
    biased, n = 0.0, 0
    for value in values:
        if value is None:
            out.append(None if n == 0 else biased / (1.0 - weight**n))
            continue
        biased = weight * biased + (1.0 - weight) * float(value)
        n += 1
        out.append(biased / (1.0 - weight**n) if weight < 1.0 else float(value))
    return out


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


# ---------------------------------------------------------------------- the history
class LossHistory:
    """One job's metrics as a chart keeps them: the train and eval tables, the EMA, the latest values.

    :class:`~unsloth_nb.ui.chart.LossChart` holds one and sends what it gathers;
    :func:`~unsloth_nb.ui.loss_static.static_figure` fills one and draws it. It has
    no lock of its own: the live chart calls it under its lock.
    """

    def __init__(self, max_points: int = MAX_POINTS, smoothing: float = SMOOTHING) -> None:
        self.tables = {name: _Table(columns, max_points) for name, columns in _TABLES.items()}
        self.ema = _Ema(smoothing)
        self.latest: dict[str, float] = {}
        self.total_steps: int | None = None
        self.ended = False
        self.min_loss: tuple[float, float] | None = None  # (loss, step)

    @property
    def has_metrics(self) -> bool:
        return any(table.raw_rows for table in self.tables.values())

    @property
    def smoothing(self) -> float:
        """What the chart smooths with by default: suited to the run's planned length, which the first progress
        event gives (``total_steps``), reached in a few doublings as the run grows (:func:`running_smoothing`).

        Not recomputed from every step: a default that moved with every step would redraw the
        whole curve on every update. The end changes nothing: a 2,000-step run stopped at step 8
        keeps the light smoothing it was drawn with (not 0.995, and not a jump to another curve);
        a finished run ends on its own length's. A run that never said its length is smoothed, once
        ended, by the steps it ran.
        """
        step = self.latest.get("step")
        total = self.total_steps or (step if self.ended else None)
        return running_smoothing(total, step)

    def ingest(self, event: Event) -> bool:
        """Take one event (non-metrics events are ignored); True for a job's end, which seals the tables."""
        if event.kind == "progress":
            total = _finite(event.data.get("total_steps"))
            if total:
                self.total_steps = int(total)
            return False
        if event.kind == "status":
            if event.data.get("state") in TERMINAL_STATES:
                for table in self.tables.values():
                    table.seal()
                self.ended = True
                return True
            return False
        if event.kind != "metrics":
            return False
        data = event.data
        step = _finite(data.get("step"))
        if step is None:
            return False
        train, evals = self.tables["train"], self.tables["eval"]
        if any(data.get(key) is not None for key in ("loss", "learning_rate", "tokens_per_second")) and train.accepts(step):
            loss = _finite(data.get("loss"))
            self.ema.update(loss)
            if loss is not None and (self.min_loss is None or loss < self.min_loss[0]):
                self.min_loss = (loss, step)
            row = {
                "loss": loss,
                "lr": _finite(data.get("learning_rate")),
                "tps": _finite(data.get("tokens_per_second")),
                "gn": _finite(data.get("grad_norm")),
            }
            train.add(step, row)
        if data.get("eval_loss") is not None and evals.accepts(step):
            evals.add(step, {"loss": _finite(data.get("eval_loss"))})
        for key, value in data.items():
            number = _finite(value)
            if number is not None:
                self.latest[key] = number
        return False

    def payloads(self, with_open: bool = False) -> dict[str, dict[str, list[Any]]]:
        """Every table's rows for the wire, by table name (``with_open``: the unfinished bucket too)."""
        return {name: table.payload(with_open=with_open) for name, table in self.tables.items()}
