"""What the form shows besides its fields: the dataset preview and the plan, as HTML."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from unsloth_nb.ui.panel_fields import RED

if TYPE_CHECKING:
    from unsloth_nb.data import DatasetPreview
    from unsloth_nb.planning.planner import Plan

_PREVIEW_CELL_CHARS = 300


def say_html(text: str, *, error: bool = False) -> str:
    """The panel's message line."""
    if not text:
        return ""
    colour = RED if error else "inherit"
    return f'<pre style="white-space:pre-wrap;color:{colour};font-size:12px">{html.escape(text)}</pre>'


def _short(text: Any) -> str:
    value = str(text)
    return value if len(value) <= _PREVIEW_CELL_CHARS else value[: _PREVIEW_CELL_CHARS - 1] + "…"


def _row_html(row: Mapping[str, Any]) -> str:
    if "messages" in row:
        turns = [
            f"<b>{html.escape(str(t.get('role')))}</b>: {html.escape(_short(t.get('content', '')))}" for t in row["messages"]
        ]
        return "<br>".join(turns)
    return html.escape(_short(row.get("text", row)))


def preview_html(preview: DatasetPreview, *, skip_invalid: bool = True) -> str:
    from unsloth_nb.data import FORMAT_LABELS, format_summary

    if preview.error is not None:
        return f'<pre style="white-space:pre-wrap;color:{RED};font-size:12px">{html.escape(preview.error)}</pre>'
    label = FORMAT_LABELS.get(preview.format or "", preview.format or "unknown")
    parts = [f"<div>Detected format: <b>{html.escape(label)}</b></div>"]
    if preview.summary is not None:
        summary = format_summary(preview.summary)
        if not skip_invalid:  # nothing is skipped unless the box is ticked: the bad rows stop the job instead
            summary = summary.replace(f", {preview.summary.skipped:,} skipped", "")
        parts.append(f"<div style='font-size:12px'>{html.escape(summary)}</div>")
    sampled = preview.summary is not None and any("a sample of its first rows" in line for line in preview.summary.sources)
    if preview.ok:
        where = " of the sample (the rest is checked where training runs)" if sampled else ""
        parts.append(f"<div style='color:#1a7f37'>✓ every row{where} can be trained on</div>")
    else:
        shown = preview.problems[:5]
        more = len(preview.problems) - len(shown)
        lines = [*shown, *([f"… and {more} more"] if more > 0 else [])]
        parts.append(
            f"<div style='color:{RED}'>{len(preview.problems)} row(s) cannot be used"
            + (
                " and will be skipped:</div>"
                if skip_invalid
                else " (fix them, or tick “Skip invalid” under Advanced settings):</div>"
            )
            + f"<pre style='white-space:pre-wrap;color:{RED};font-size:11px'>{html.escape(chr(10).join(lines))}</pre>"
        )
    if preview.rows:
        body = "".join(
            f"<tr><td style='vertical-align:top;white-space:nowrap'><code>{html.escape(origin.rsplit('/', 1)[-1])}</code></td>"
            f"<td style='text-align:left'>{_row_html(row)}</td></tr>"
            for origin, row in zip(preview.origins, preview.rows, strict=False)
        )
        parts.append(f"<table class='unsloth-nb-preview' style='font-size:12px'>{body}</table>")
    return "<div class='unsloth-nb-preview-box' style='line-height:1.4'>" + "".join(parts) + "</div>"


def plan_html(plan: Plan) -> str:
    from unsloth_nb.backends.registry import get_backend
    from unsloth_nb.planning.plan_text import format_plan

    backend = get_backend(plan.placement)
    memory = "GPU memory" if plan.device == "cuda" else "RAM"
    facts = [
        ("Runs on", backend.label),
        ("Device", plan.local.describe() if backend.in_process else (backend.plan_target(plan) or "no GPU found")),
        ("Method", plan.method),
        ("Memory", f"~{plan.memory_needed_gb:.1f} GB of {memory}"),
    ]
    if backend.rents:
        facts.append(("Price", f"${plan.usd_per_hour:.2f}/h" if plan.usd_per_hour is not None else "unknown"))
        facts.append(("Estimated cost", f"~${plan.estimated_cost_usd:.2f}" if plan.estimated_cost_usd is not None else "unknown"))
    if plan.total_steps is not None:
        facts.append(("Steps", f"{plan.total_steps:,}"))
    if plan.estimated_seconds is not None:
        facts.append(("Time", plan.time_text()))
    rows = "".join(
        f"<tr><td style='padding-right:12px'>{html.escape(k)}</td><td><b>{html.escape(v)}</b></td></tr>" for k, v in facts
    )
    warnings = "".join(f"<div style='color:#9a6700'>⚠ {html.escape(w)}</div>" for w in plan.warnings)
    details = f"<details><summary>Full plan</summary><pre style='font-size:11px'>{html.escape(format_plan(plan))}</pre></details>"
    return f"<div class='unsloth-nb-plan' style='line-height:1.4'><table style='font-size:12px'>{rows}</table>{warnings}{details}</div>"
