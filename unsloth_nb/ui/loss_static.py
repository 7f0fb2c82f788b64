"""The loss chart without a live kernel: a plotly Figure, a standalone HTML file, an inline-SVG picture.

These need no widget, comm or front end: :func:`static_figure` and
:func:`write_loss_html` draw a finished job's events (after the run, from a
script, in ``unsloth-nb`` tooling), and :func:`_svg_html` is the picture a
LossChart's mimebundle carries where widgets cannot render (nbconvert, GitHub,
terminal IPython). They build on the same history (:mod:`unsloth_nb.ui.loss_series`)
and spec (:mod:`unsloth_nb.ui.loss_figure`) as the live chart, so an export looks
like what the notebook showed, and import nothing from the widget side.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.jobrun.events import Event
from unsloth_nb.ui.loss_figure import HEIGHT, _build_figure, _figure_spec
from unsloth_nb.ui.loss_series import MAX_POINTS, SMOOTHING, LossHistory, smoothed

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["static_figure", "svg_series_html", "write_loss_html"]


def static_figure(
    events: Iterable[Event],
    *,
    title: str | None = None,
    max_points: int = MAX_POINTS,
    smoothing: float | None = None,
    log_y_menu: bool = False,
) -> go.Figure:
    """A plotly Figure of a job's loss curve from its events (same look as the live chart).

    ``smoothing`` defaults to what suits the run's length, as the live chart's does.
    """
    history = LossHistory(max_points, SMOOTHING)
    for event in events:
        history.ingest(event)
    weight = history.smoothing if smoothing is None else smoothing
    spec = _figure_spec(title, HEIGHT, weight)
    widths = {name: table.width for name, table in history.tables.items()}
    return _build_figure(spec, history.payloads(with_open=True), smoothing=weight, widths=widths, log_y_menu=log_y_menu)


def write_loss_html(events: Iterable[Event], path: str | Path, *, title: str | None = "Training loss") -> Path:
    """Write a standalone HTML file of the loss curve with plotly.js embedded (works offline)."""
    figure = static_figure(events, title=title, log_y_menu=True)
    figure.update_layout(height=560)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.write_html(target, include_plotlyjs=True, full_html=True, config={"displaylogo": False, "responsive": True})
    return target


_SVG_W, _SVG_H = 640, 220
_SVG_MARGIN = {"l": 52, "r": 12, "t": 22, "b": 28}
_SVG_MAX_POINTS = 500


def _svg_html(
    train: dict[str, list[Any]],
    evals: dict[str, list[Any]],
    summary: str,
    title: str | None,
    smoothing: float = SMOOTHING,
    width: int = 1,
) -> str:
    """Inline SVG of loss, smoothed loss and eval points; a few KB, no scripts."""
    series = [
        ("train loss", train["x"], train["loss"], "#9ec5f0", "line"),
        ("smoothed", train["x"], smoothed(train["loss"], smoothing, width), "#1f5fbf", "line"),
        ("eval loss", evals["x"], evals["loss"], "#d62728", "points"),
    ]
    return svg_series_html(series, summary, title)


#: One series of an SVG picture: (legend label, xs, ys, colour, "line" | "points").
Series = tuple[str, list[Any], list[Any], str, str]


def svg_series_html(series: list[Series], caption_text: str, title: str | None) -> str:
    """Inline SVG of any number of step series, with a legend of those that have a value."""
    caption = f'<div style="font:12px sans-serif;color:#555">{html.escape(caption_text)}</div>' if caption_text else ""
    heading = f'<div style="font:bold 13px sans-serif">{html.escape(title)}</div>' if title else ""
    series = [s for s in series if any(y is not None for y in s[2])]
    finite_y = [y for _, _, ys, _, _ in series for y in ys if y is not None]
    finite_x = [x for _, xs, ys, _, _ in series for x, y in zip(xs, ys, strict=True) if y is not None]
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
    for _, xs, ys, color, kind in series:
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
    x_pos = m["l"] + 4
    for label, _, _, color, _ in series:
        parts.append(f'<text x="{x_pos}" y="14" fill="{color}">■ {html.escape(label)}</text>')
        x_pos += 14 + 7 * len(label)
    parts.append("</svg>")
    return f'<div class="unsloth-nb-loss-static">{heading}{"".join(parts)}{caption}</div>'
