"""The before/after preview of an enhanced set: what the teacher changed, row by row, as a diff-style table.

Built from the enhanced rows and their provenance (a finished run's files are enough: :func:`review_files`), so a
job's set can be looked at after the kernel restarted. In a notebook the object renders as an HTML table with
removed words struck through and added words highlighted; ``str()`` is the terminal's side-by-side text.
"""

from __future__ import annotations

import difflib
import html
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unsloth_nb.data.records import Row


@dataclass
class ReviewRow:
    operation: str
    source: str
    before_question: str
    before_answer: str
    after_question: str
    after_answer: str


def _last_qa(row: Row) -> tuple[str, str]:
    messages = row.get("messages") or []
    question = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    answer = messages[-1]["content"] if messages and messages[-1].get("role") == "assistant" else ""
    return str(question), str(answer)


def _diff_html(before: str, after: str) -> str:
    a, b = before.split(), after.split()
    out: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            out.append(f'<del style="background:#fdd">{html.escape(" ".join(a[i1:i2]))}</del>')
        if tag in ("replace", "insert"):
            out.append(f'<ins style="background:#dfd;text-decoration:none">{html.escape(" ".join(b[j1:j2]))}</ins>')
        if tag == "equal":
            out.append(html.escape(" ".join(a[i1:i2])))
    return " ".join(out)


@dataclass
class Review:
    rows: list[ReviewRow]
    total_changed: int

    def __str__(self) -> str:
        lines = [f"{len(self.rows)} of {self.total_changed} changed rows (before | after):"]
        for row in self.rows:
            lines.append(f"- {row.operation} ({row.source})")
            for label, before, after in (
                ("Q", row.before_question, row.after_question),
                ("A", row.before_answer, row.after_answer),
            ):
                if before == after:
                    continue
                left = textwrap.wrap(before or "-", 48) or [""]
                right = textwrap.wrap(after, 48) or [""]
                for k in range(max(len(left), len(right))):
                    prefix = f"  {label} " if k == 0 else "    "
                    lines.append(f"{prefix}{(left[k] if k < len(left) else ''):<48} | {right[k] if k < len(right) else ''}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cells = []
        for row in self.rows:
            question = (
                _diff_html(row.before_question, row.after_question) if row.before_question else html.escape(row.after_question)
            )
            answer = _diff_html(row.before_answer, row.after_answer) if row.before_answer else html.escape(row.after_answer)
            cells.append(
                f"<tr><td>{html.escape(row.operation)}<br><small>{html.escape(row.source)}</small></td>"
                f"<td>{question}</td><td>{answer}</td></tr>"
            )
        head = "<tr><th>operation</th><th>question (before → after)</th><th>answer (before → after)</th></tr>"
        caption = f"<caption>{len(self.rows)} of {self.total_changed} rows the teacher changed or wrote</caption>"
        return f'<table style="text-align:left">{caption}{head}{"".join(cells)}</table>'


def review_rows(rows: list[Row], provenance: list[dict[str, Any]], n: int = 5) -> Review:
    """The first ``n`` rows the teacher changed or wrote, one per operation in turn (so each kind is seen)."""
    changed: list[ReviewRow] = []
    for row, where in zip(rows, provenance, strict=False):
        operation = str(where.get("operation", ""))
        if operation in ("original", "unchanged", ""):
            continue
        question, answer = _last_qa(row)
        changed.append(
            ReviewRow(
                operation,
                str(where.get("source", "")),
                str(where.get("original_question", "")),
                str(where.get("original_answer", "")),
                question,
                answer,
            )
        )
    by_operation: dict[str, list[ReviewRow]] = {}
    for item in changed:
        by_operation.setdefault(item.operation, []).append(item)
    picked: list[ReviewRow] = []
    while len(picked) < min(n, len(changed)):
        for items in by_operation.values():
            if items and len(picked) < n:
                picked.append(items.pop(0))
    return Review(picked, len(changed))


def review_files(enhanced: str | Path, provenance: str | Path, n: int = 5) -> Review:
    def read(path: str | Path) -> list[dict[str, Any]]:
        return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]

    return review_rows(read(enhanced), read(provenance), n)


__all__ = ["Review", "ReviewRow", "review_files", "review_rows"]
