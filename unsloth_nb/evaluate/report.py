"""The evaluation's result: win / tie / loss, the win rate with a 95 % bootstrap interval, position
consistency, cost and time, and one row per question; as JSON, HTML, a pandas DataFrame and CLI lines."""

from __future__ import annotations

import html
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPORT_JSON = "evaluation.json"
REPORT_HTML = "evaluation.html"
BOOTSTRAP_SAMPLES = 2000
_SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}


@dataclass
class RowResult:
    id: str
    question: str
    reference: str | None
    base: str
    finetuned: str
    outcome: str  # win, tie, loss, no_verdict, not_judged
    consistent: bool | None
    games: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""  # why a row was not judged

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def win_rate(outcomes: list[str]) -> float | None:
    scores = [_SCORE[o] for o in outcomes if o in _SCORE]
    return sum(scores) / len(scores) if scores else None


def bootstrap_ci(outcomes: list[str], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, float] | None:
    """95 % percentile bootstrap interval of the win rate (ties count half), resampling questions."""
    scores = [_SCORE[o] for o in outcomes if o in _SCORE]
    if not scores:
        return None
    rng = random.Random(seed)
    n = len(scores)
    means = sorted(sum(rng.choice(scores) for _ in range(n)) / n for _ in range(samples))
    return means[int(0.025 * samples)], means[min(samples - 1, int(0.975 * samples))]


@dataclass
class EvaluationReport:
    job_id: str | None
    judge_provider: str
    judge_model: str
    rows: list[RowResult]
    heldout_source: str = ""
    dropped_near_duplicates: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True
    estimate_usd: float | None = None
    wall_seconds: float = 0.0
    requests_sent: int = 0
    cache_hits: int = 0
    retries: int = 0
    generation_seconds: float = 0.0
    max_new_tokens: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None  # set when the judge failed (down, refused): the rows judged so far are kept

    # ------------------------------------------------------------------ figures
    def count(self, outcome: str) -> int:
        return sum(1 for r in self.rows if r.outcome == outcome)

    @property
    def wins(self) -> int:
        return self.count("win")

    @property
    def ties(self) -> int:
        return self.count("tie")

    @property
    def losses(self) -> int:
        return self.count("loss")

    @property
    def no_verdict(self) -> int:
        return self.count("no_verdict")

    @property
    def not_judged(self) -> int:
        return self.count("not_judged")

    @property
    def win_rate(self) -> float | None:
        return win_rate([r.outcome for r in self.rows])

    @property
    def ci95(self) -> tuple[float, float] | None:
        return bootstrap_ci([r.outcome for r in self.rows])

    @property
    def consistency(self) -> float | None:
        both = [r for r in self.rows if r.consistent is not None]
        return sum(1 for r in both if r.consistent) / len(both) if both else None

    def summary(self) -> dict[str, Any]:
        ci = self.ci95
        return {
            "questions": len(self.rows),
            "wins": self.wins,
            "ties": self.ties,
            "losses": self.losses,
            "no_verdict": self.no_verdict,
            "not_judged": self.not_judged,
            "win_rate": self.win_rate,
            "ci95": list(ci) if ci else None,
            "consistency": self.consistency,
            "cost_usd": round(self.cost_usd, 6),
            "cost_known": self.cost_known,
            "wall_seconds": round(self.wall_seconds, 3),
            "requests_sent": self.requests_sent,
            "cache_hits": self.cache_hits,
            "judge": f"{self.judge_provider}:{self.judge_model}",
            "error": self.error,
        }

    # ------------------------------------------------------------------ files
    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "rows"}
        data["summary"] = self.summary()
        data["rows"] = [r.to_json() for r in self.rows]
        return data

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> EvaluationReport:
        fields = {k: v for k, v in raw.items() if k not in ("rows", "summary")}
        return cls(rows=[RowResult(**r) for r in raw.get("rows", [])], **fields)

    def save(self, folder: Path) -> tuple[Path, Path]:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / REPORT_JSON
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
        page = folder / REPORT_HTML
        page.write_text(self.to_html(), encoding="utf-8")
        return path, page

    @classmethod
    def load(cls, folder: Path) -> EvaluationReport | None:
        path = Path(folder) / REPORT_JSON
        if not path.is_file():
            return None
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))

    # ------------------------------------------------------------------ views
    @property
    def table(self) -> Any:
        """One row per question (a pandas DataFrame; a list of dicts when pandas is not installed)."""
        records = [
            {
                "question": r.question,
                "outcome": r.outcome,
                "consistent": r.consistent,
                "finetuned": r.finetuned,
                "base": r.base,
                "reference": r.reference,
                "verdict_finetuned_first": (r.games[0].get("winner") if r.games else None),
                "verdict_base_first": (r.games[1].get("winner") if len(r.games) > 1 else None),
                "rationale_finetuned_first": (r.games[0].get("rationale") if r.games else ""),
                "rationale_base_first": (r.games[1].get("rationale") if len(r.games) > 1 else ""),
                "note": r.note,
            }
            for r in self.rows
        ]
        try:
            import pandas as pd
        except ImportError:
            return records
        return pd.DataFrame.from_records(records, index=[r.id for r in self.rows])

    def headline(self) -> str:
        rate, ci, cons = self.win_rate, self.ci95, self.consistency
        parts = [f"fine-tuned vs base: {self.wins} wins, {self.ties} ties, {self.losses} losses"]
        if rate is not None:
            parts.append(f"win rate {rate:.0%}" + (f" (95% CI {ci[0]:.0%}-{ci[1]:.0%})" if ci else ""))
        if cons is not None:
            parts.append(f"position-consistent in {cons:.0%}")
        return "; ".join(parts)

    def summary_lines(self) -> list[str]:
        cost = f"${self.cost_usd:.4f}" if self.cost_known else f"${self.cost_usd:.4f} + unpriced usage"
        lines = [
            self.headline(),
            f"judge {self.judge_provider}:{self.judge_model}; {len(self.rows)} questions ({self.heldout_source}); "
            f"cost {cost}; {self.requests_sent} requests, {self.cache_hits} from cache; {self.wall_seconds:.1f} s",
        ]
        if self.dropped_near_duplicates:
            lines.append(f"{self.dropped_near_duplicates} held-out questions dropped as near-duplicates of training prompts")
        if self.no_verdict:
            lines.append(f"{self.no_verdict} questions without a verdict (malformed judge replies, asked twice)")
        if self.not_judged:
            notes = sorted({r.note for r in self.rows if r.outcome == "not_judged" and r.note})
            lines.append(f"{self.not_judged} questions not judged: {'; '.join(notes) or 'see the table'}")
        lines += [f"warning: {w}" for w in self.warnings]
        if self.error:
            lines.append(f"error: {self.error}")
        return lines

    def panel_html(self, max_rows: int | None = None) -> str:
        """The result as an HTML fragment: summary lines, a win/tie/loss bar and the per-question table."""
        e = html.escape
        total = max(1, self.wins + self.ties + self.losses)
        bar = "".join(
            f'<div style="width:{100 * n / total:.2f}%;background:{color};color:white;padding:4px 0;text-align:center">'
            f"{label} {n}</div>"
            for n, label, color in (
                (self.wins, "win", "#2e7d32"),
                (self.ties, "tie", "#9e9e9e"),
                (self.losses, "loss", "#c62828"),
            )
            if n
        )
        shown = self.rows if max_rows is None else self.rows[:max_rows]
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{e(str(v))}</td>"
                for v in (
                    r.question,
                    r.outcome + ("" if r.consistent is not False else " (inconsistent)") + (f": {r.note}" if r.note else ""),
                    r.finetuned,
                    r.base,
                    r.reference or "",
                    " | ".join(
                        f"{g.get('first')} first: {g.get('winner') or g.get('status')} - {g.get('rationale', '')}"
                        for g in r.games
                    ),
                )
            )
            + "</tr>"
            for r in shown
        )
        more = f"<p>… {len(self.rows) - len(shown)} more rows in evaluation.html</p>" if len(shown) < len(self.rows) else ""
        lines = "".join(f"<p style='margin:2px 0'>{e(line)}</p>" for line in self.summary_lines())
        return (
            f'<div class="unsloth-nb-evaluation">{lines}'
            f'<div style="display:flex;width:40em;max-width:100%;margin:6px 0">{bar}</div>'
            '<table style="border-collapse:collapse;font-size:90%"><tr><th>question</th><th>outcome</th><th>fine-tuned</th>'
            f"<th>base</th><th>reference</th><th>verdicts</th></tr>{rows}</table>{more}</div>"
        )

    def to_html(self) -> str:
        e = html.escape
        return (
            "<!doctype html><meta charset='utf-8'><title>unsloth-nb evaluation</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px;vertical-align:top;max-width:30em}</style>"
            f"<h1>Evaluation{(' of job ' + e(self.job_id)) if self.job_id else ''}</h1>{self.panel_html()}"
        )


__all__ = ["REPORT_HTML", "REPORT_JSON", "EvaluationReport", "RowResult", "bootstrap_ci", "win_rate"]
