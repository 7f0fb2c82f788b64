"""One enhancement run: training rows -> teacher requests -> checked outputs -> a new dataset file with provenance.

Every request goes through :class:`~unsloth_nb.llm.client.LLMClient` (live) or :mod:`.batch` (Message Batches),
both of which put each answer in the disk cache the moment it arrives. That cache is what makes a run resumable:
after Stop, Ctrl-C or a dead kernel, the same rows build the same requests, which are answered from disk, so a
re-run sends nothing twice for rows already done. ``teacher/progress.json`` says how far a run got (for people;
the cache is the truth).

What is written (in the work folder, a job's ``teacher/``; ``teacher.out`` may name the dataset file elsewhere):

- ``enhanced.jsonl``: the training rows, ``{"messages": [...]}``, each original row (answer improved when the
  teacher's rewrite passed the gates) followed by its accepted paraphrases. Read back through the same dataset
  validation as a user's file before anything trains on it.
- ``provenance.jsonl``: one line per output row, same order: the operation that made it, the source row's
  ``file:line``, the original question and answer, the teacher model.
- ``card.json``: teacher, provider, prompts by hash, counts per operation, rejections by reason, cost.

Paraphrases that are near-duplicates of a held-out question (the judge's, or ``teacher.holdout``'s) are dropped
from the training side and counted, so the judge never scores a model on a rewording of a row it trained on.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from unsloth_nb.data.records import Row
from unsloth_nb.errors import UnslothNbError
from unsloth_nb.llm.types import ChatRequest
from unsloth_nb.teacher.documents import Chunk
from unsloth_nb.teacher.gates import generated_pairs, improved_answer, paraphrases
from unsloth_nb.teacher.prompts import Prompt, load_prompt

if TYPE_CHECKING:
    from unsloth_nb.config import TeacherConfig
    from unsloth_nb.llm import CallOutcome, LLMClient

TEACHER_DIR = "teacher"
ENHANCED_FILE = "enhanced.jsonl"
PROVENANCE_FILE = "provenance.jsonl"
CARD_FILE = "card.json"
PROGRESS_FILE = "progress.json"

Emit = Callable[..., Any]
RunStatus = Literal["complete", "budget", "stopped"]


class TeacherError(UnslothNbError):
    """The teacher could not finish (its cap, its API down, a refused request); what it did is kept and cached."""


def _no_emit(kind: str, /, **data: Any) -> None:
    return None


# ---------------------------------------------------------------------------- rows
@dataclass(frozen=True)
class QA:
    """A row the teacher can work on: the turns before the last question, the question, its answer."""

    index: int
    prefix: list[dict[str, str]]
    question: str
    answer: str
    origin: str

    def row(self, question: str | None = None, answer: str | None = None) -> Row:
        turns = [*self.prefix, {"role": "user", "content": question or self.question}]
        return {"messages": [*turns, {"role": "assistant", "content": answer or self.answer}]}


def qa_of(row: Row, index: int, origin: str = "") -> QA | None:
    """Rows that end with a user question and its assistant answer; others (plain text) pass through unchanged."""
    messages = row.get("messages")
    if not isinstance(messages, list) or len(messages) < 2:
        return None
    last, before = messages[-1], messages[-2]
    if last.get("role") != "assistant" or before.get("role") != "user":
        return None
    prefix = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages[:-2]]
    return QA(index, prefix, str(before["content"]), str(last["content"]), origin)


# ---------------------------------------------------------------------------- requests
@dataclass(frozen=True)
class Task:
    qa: QA | None  # the row improved or paraphrased (None for generate)
    operation: str
    request: ChatRequest
    chunk: Chunk | None = None  # the document passage generate writes from


def build_tasks(
    rows: Sequence[Row], origins: Sequence[str], teacher: TeacherConfig
) -> tuple[list[Task], list[Row], dict[str, Prompt]]:
    """(one task per row and row operation, then one per document chunk; rows passed through untouched; prompts)."""
    from unsloth_nb.teacher.documents import chunk_document

    prompts = {op: load_prompt(op, teacher.prompts) for op in teacher.operations}
    params: dict[str, Any] = {"max_tokens": teacher.max_new_tokens}
    row_ops = [op for op in teacher.operations if op != "generate"]
    tasks: list[Task] = []
    untouched: list[Row] = []
    for index, row in enumerate(rows):
        qa = qa_of(row, index, origins[index] if index < len(origins) else "") if row_ops else None
        if qa is None:
            untouched.append(row)
            continue
        for op in row_ops:
            text = prompts[op].fill(question=qa.question, answer=qa.answer, n=teacher.paraphrases)
            request = ChatRequest.make(teacher.provider, teacher.model, text, params=params, tag=f"{op}:{index}")
            tasks.append(Task(qa, op, request))
    if "generate" in teacher.operations:
        for document in teacher.documents:
            for chunk in chunk_document(document, teacher.chunk_chars):
                text = prompts["generate"].fill(document=chunk.document, chunk=chunk.text, n=teacher.questions_per_chunk)
                request = ChatRequest.make(teacher.provider, teacher.model, text, params=params, tag=f"generate:{chunk.cite}")
                tasks.append(Task(None, "generate", request, chunk))
    return tasks, untouched, prompts


# ---------------------------------------------------------------------------- the outcome
@dataclass
class EnhanceOutcome:
    rows: list[Row]
    provenance: list[dict[str, Any]]
    status: RunStatus = "complete"
    counts: dict[str, int] = field(default_factory=dict)  # rows in, improved, paraphrases added, ...
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> count
    spend: dict[str, Any] = field(default_factory=dict)
    not_done: int = 0  # requests not answered (budget, stop)
    message: str = ""
    path: Path | None = None
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def usd(self) -> float:
        return float(self.spend.get("usd", 0.0) or 0.0)

    def review(self, n: int = 5) -> Any:
        """Before/after of ``n`` changed rows (a diff-style table in a notebook; text in a terminal)."""
        from unsloth_nb.teacher.review import review_rows

        return review_rows(self.rows, self.provenance, n)

    def summary_line(self) -> str:
        c = self.counts
        rejected = sum(self.rejected.values())
        text = (
            f"teacher: {c.get('rows_in', 0)} rows -> {len(self.rows)} training rows "
            f"({c.get('improved', 0)} answers improved, {c.get('paraphrases', 0)} paraphrases added"
        )
        if c.get("generated"):
            text += f", {c['generated']} rows generated from documents"
        if c.get("dropped_heldout"):
            text += f", {c['dropped_heldout']} paraphrases of held-out questions dropped"
        text += f"; {rejected} outputs rejected); ${self.usd:.4f}"
        if self.spend.get("cache_hits"):
            text += f", {self.spend['cache_hits']} answers from the cache"
        return text


def teacher_folder(folder: Path) -> Path:
    return Path(folder) / TEACHER_DIR


def output_path(teacher: TeacherConfig, work_dir: Path) -> Path:
    return Path(teacher.out).expanduser() if teacher.out else Path(work_dir) / ENHANCED_FILE


# ---------------------------------------------------------------------------- running
def make_client(teacher: TeacherConfig, stop: Callable[[], bool] | None = None, api_key: str | None = None) -> LLMClient:
    """The teacher's client: its provider (key read from the environment here, never stored), prices and cap."""
    from unsloth_nb.llm import LLMClient, PriceTable, make_provider, provider_secret

    variable = provider_secret(teacher.provider)
    key = api_key if api_key is not None else (os.environ.get(variable) if variable else None)
    if variable and not key and teacher.provider != "openai-compatible":
        from unsloth_nb.errors import MissingSecretError

        raise MissingSecretError(variable, f"for the {teacher.provider} teacher ({teacher.model})")
    return LLMClient(
        make_provider(teacher.provider, base_url=teacher.base_url, api_key=key),
        prices=PriceTable({**teacher.prices}),
        concurrency=teacher.concurrency,
        timeout=teacher.timeout,
        max_cost_usd=teacher.max_cost_usd,
        expected_output_tokens=min(teacher.max_new_tokens, 400),
        stop=stop,
        cap_field="teacher.max_cost_usd",
    )


def use_batch(teacher: TeacherConfig, requests: int) -> bool:
    if teacher.provider != "anthropic" or teacher.batch == "off":
        return False
    return teacher.batch == "on" or requests >= teacher.batch_above


class _Progress:
    """Progress lines (at most one every ``every`` s) and ``progress.json`` (for people; the cache is the truth)."""

    def __init__(self, total: int, path: Path, emit: Emit, client: LLMClient, every: float = 2.0) -> None:
        self.total, self.path, self.emit, self.client, self.every = total, path, emit, client, every
        self.done = 0
        self.said = -1  # the count the last progress line gave
        self.started = time.monotonic()
        self.last = 0.0
        self.lock = threading.Lock()

    def step(self, force: bool = False) -> None:
        with self.lock:
            if force and self.said == self.done:
                return  # the last line already said it
            self.done += 0 if force else 1
            now = time.monotonic()
            if not force and now - self.last < self.every and self.done < self.total:
                return
            self.said = self.done
            self.last = now
            spend = self.client.spend
            rate = self.done / max(now - self.started, 1e-6)
            eta = (self.total - self.done) / rate if rate > 0 and self.done < self.total else 0.0
            self.path.parent.mkdir(parents=True, exist_ok=True)
            state = {"done": self.done, "total": self.total, "usd": round(spend.usd, 6), "requests_sent": spend.requests_sent}
            self.path.write_text(json.dumps(state), encoding="utf-8")
            self.emit(
                "log",
                level="info",
                source="teacher",
                message=f"teacher: {self.done}/{self.total} requests, ${spend.usd:.4f} so far, ETA {eta:.0f} s",
            )


def enhance_rows(
    rows: Sequence[Row],
    origins: Sequence[str],
    teacher: TeacherConfig,
    work_dir: Path,
    *,
    heldout_questions: Sequence[str] = (),
    client: LLMClient | None = None,
    emit: Emit = _no_emit,
    stop: Callable[[], bool] = lambda: False,
) -> EnhanceOutcome:
    """Run the teacher over ``rows`` and write the enhanced set (see the module docstring) with its side files in
    ``work_dir`` (a job's ``teacher/`` folder); never raises for a budget or a stop: the outcome's ``status`` says
    so and everything answered so far is cached."""
    work_dir = Path(work_dir)
    tasks, untouched, prompts = build_tasks(rows, origins, teacher)
    client = client or make_client(teacher, stop)
    progress = _Progress(len(tasks), work_dir / PROGRESS_FILE, emit, client)
    requests = [task.request for task in tasks]
    if use_batch(teacher, len(requests)):
        from unsloth_nb.teacher.batch import run_batch

        outcomes = run_batch(client, requests, work_dir, poll_seconds=teacher.poll_seconds, stop=stop, emit=emit)
    else:
        from unsloth_nb.llm.errors import LLMError

        try:
            outcomes = client.run(requests, on_done=lambda index, outcome: progress.step())
        except LLMError as exc:
            raise TeacherError(f"the teacher failed: {exc}; answers received so far are cached, so a re-run continues") from None
    progress.step(force=True)
    outcome = assemble(tasks, outcomes, untouched, teacher, heldout_questions)
    outcome.spend = client.spend.to_json()
    outcome.card = card(teacher, prompts, outcome, len(rows))
    outcome.path = write(outcome, output_path(teacher, work_dir), work_dir)
    if outcome.status == "budget":
        outcome.message = (
            f"teacher.max_cost_usd (${teacher.max_cost_usd:.2f}) reached with {outcome.not_done} of {len(tasks)} requests not "
            f"sent; the rows done are in {outcome.path} and cached: raise teacher.max_cost_usd and run again to finish "
            "(nothing is asked twice)"
        )
    elif outcome.status == "stopped":
        outcome.message = (
            f"stopped with {outcome.not_done} of {len(tasks)} teacher requests not sent; a re-run continues from the cache"
        )
    return outcome


def assemble(
    tasks: Sequence[Task],
    outcomes: Sequence[CallOutcome],
    untouched: Sequence[Row],
    teacher: TeacherConfig,
    heldout_questions: Sequence[str],
) -> EnhanceOutcome:
    """Apply each answer to its row through the gates; unanswered requests leave their rows as they were."""
    from unsloth_nb.evaluate.holdout import NearDuplicates

    heldout = NearDuplicates(list(heldout_questions)) if heldout_questions else None
    improved: dict[int, str] = {}
    reworded: dict[int, list[str]] = {}
    qas: dict[int, Any] = {}
    rejected: dict[str, int] = {}
    counts = {
        "rows_in": 0,
        "improved": 0,
        "paraphrases": 0,
        "generated": 0,
        "dropped_heldout": 0,
        "passed_through": len(untouched),
    }
    generated: list[tuple[Chunk, str, str]] = []
    not_done = 0
    status: RunStatus = "complete"
    for task, result in zip(tasks, outcomes, strict=True):
        if task.qa is not None:
            qas[task.qa.index] = task.qa
        if result.completion is None:
            not_done += 1
            if result.status == "budget":
                status = "budget"
            elif result.status in ("stopped", "not_sent") and status != "budget":
                status = "stopped"
            continue
        text = result.completion.text
        if task.operation == "generate" and task.chunk is not None:
            pairs, reasons = generated_pairs(text, task.chunk.text, teacher.questions_per_chunk)
            for why, n in reasons.items():
                rejected[f"generate:{why}"] = rejected.get(f"generate:{why}", 0) + n
            for question, answer in pairs:
                if heldout is not None and heldout.match(question):
                    counts["dropped_heldout"] += 1
                else:
                    generated.append((task.chunk, question, answer))
            continue
        assert task.qa is not None
        if task.operation == "improve":
            better, reason = improved_answer(text, task.qa.answer)
            if better is None:
                rejected[f"improve:{reason}"] = rejected.get(f"improve:{reason}", 0) + 1
            else:
                improved[task.qa.index] = better
        else:
            found, reasons = paraphrases(text, task.qa.question, teacher.paraphrases)
            for reason, n in reasons.items():
                rejected[f"paraphrase:{reason}"] = rejected.get(f"paraphrase:{reason}", 0) + n
            if heldout is not None:
                kept = [q for q in found if not heldout.match(q)]
                counts["dropped_heldout"] += len(found) - len(kept)
                found = kept
            reworded[task.qa.index] = found
    out_rows: list[Row] = list(untouched)
    provenance: list[dict[str, Any]] = [{"operation": "unchanged"} for _ in untouched]
    for index in sorted(qas):
        qa = qas[index]
        answer = improved.get(index, qa.answer)
        base = {"source": qa.origin, "original_question": qa.question, "original_answer": qa.answer, "model": teacher.model}
        counts["rows_in"] += 1
        if index in improved:
            counts["improved"] += 1
        out_rows.append(qa.row(answer=answer))
        provenance.append({**base, "operation": "improve" if index in improved else "original"})
        for question in reworded.get(index, []):
            counts["paraphrases"] += 1
            out_rows.append(qa.row(question=question, answer=answer))
            provenance.append({**base, "operation": "paraphrase" + ("+improve" if index in improved else "")})
    for chunk, question, answer in generated:
        counts["generated"] += 1
        out_rows.append({"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]})
        provenance.append({"source": chunk.cite, "operation": "generate", "model": teacher.model})
    return EnhanceOutcome(out_rows, provenance, status, counts, rejected, not_done=not_done)


def card(teacher: TeacherConfig, prompts: dict[str, Prompt], outcome: EnhanceOutcome, rows_in: int) -> dict[str, Any]:
    """The dataset card: enough to say how the set was made and what it cost, without a secret."""
    return {
        "teacher": {"provider": teacher.provider, "model": teacher.model},
        "operations": list(teacher.operations),
        "paraphrases_per_question": teacher.paraphrases,
        "prompts": {op: {"sha256_12": prompt.sha, "file": Path(prompt.path).name} for op, prompt in prompts.items()},
        "rows_in": rows_in,
        "rows_out": len(outcome.rows),
        "counts": dict(outcome.counts),
        "rejected": dict(outcome.rejected),
        "status": outcome.status,
        "requests_not_done": outcome.not_done,
        "cost": dict(outcome.spend),
    }


def write(outcome: EnhanceOutcome, path: Path, side: Path) -> Path:
    """Write rows, provenance and card (the user's own file is never a target: a new file is written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    side.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for row in outcome.rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    with (side / PROVENANCE_FILE).open("w", encoding="utf-8") as handle:
        for line in outcome.provenance:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    (side / CARD_FILE).write_text(json.dumps(outcome.card, indent=2), encoding="utf-8")
    return path


__all__ = [
    "CARD_FILE",
    "ENHANCED_FILE",
    "PROVENANCE_FILE",
    "QA",
    "EnhanceOutcome",
    "Task",
    "TeacherError",
    "build_tasks",
    "enhance_rows",
    "make_client",
    "output_path",
    "qa_of",
    "teacher_folder",
    "use_batch",
]
