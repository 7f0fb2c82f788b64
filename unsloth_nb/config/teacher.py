"""The ``teacher:`` section: a Claude teacher improves and multiplies the Q&A rows before training (issue 13)."""

from __future__ import annotations

from dataclasses import dataclass

from unsloth_nb.config.llm_rules import endpoint_problems, holdout_problems, price_problems
from unsloth_nb.config.schema import knob
from unsloth_nb.errors import ConfigError

#: Claude Sonnet 4.5: a current Anthropic model that writes careful, complete answers at a mid price
#: ($3/$15 per million tokens, half that in a batch). Opus costs ~1.7x more for little gain on short Q&A;
#: Haiku is cheaper but rewrites less faithfully. The judge defaults to another family (gpt-5-mini).
DEFAULT_TEACHER_MODEL = "claude-sonnet-4-5"
TEACHER_PROVIDERS = ("anthropic", "openai", "openai-compatible")
TEACHER_OPERATIONS = ("improve", "paraphrase", "generate")
BATCH_MODES = ("auto", "on", "off")


@dataclass
class TeacherConfig:
    """A teacher model rewrites answers (improve), rewords questions (paraphrase) and writes Q&A from documents
    (generate) before training.

    A ``teacher:`` section turns it on. It runs on this machine only: its key (ANTHROPIC_API_KEY, or
    OPENAI_API_KEY for an OpenAI provider) never goes to a pod. The user's file is never modified: the enhanced
    rows are written to the job folder (or ``teacher.out``) with each row's provenance and a dataset card.
    """

    ENABLED_BY_SECTION = True

    enabled: bool = knob(
        False, "Enhance the dataset with a teacher model before training (a teacher: section turns it on).", flag="--teacher"
    )
    provider: str = knob(
        "anthropic",
        "Teacher API: anthropic (ANTHROPIC_API_KEY), openai (OPENAI_API_KEY) or openai-compatible (any server at base_url).",
        flag="--teacher-provider",
        choices=TEACHER_PROVIDERS,
    )
    model: str = knob(DEFAULT_TEACHER_MODEL, "Teacher model id (default claude-sonnet-4-5).", flag="--teacher-model")
    base_url: str | None = knob(None, "Base URL of the teacher API (required for openai-compatible).", flag="--teacher-base-url")
    operations: list[str] = knob(
        ["improve", "paraphrase"],
        "What the teacher does to each training row: improve (rewrite the answer), paraphrase (new wordings of the question).",
        flag="--teacher-ops",
    )
    paraphrases: int = knob(
        2, "New wordings written per question by paraphrase.", flag="--teacher-paraphrases", minimum=1, maximum=10
    )
    documents: list[str] = knob(
        [],
        "Documents (.txt, .md, .pdf) the teacher writes new Q&A rows from (generate), each row citing its chunk.",
        flag="--teacher-documents",
    )
    questions_per_chunk: int = knob(
        3, "Q&A pairs generate writes per document chunk.", flag="--teacher-questions-per-chunk", minimum=1, maximum=20
    )
    chunk_chars: int = knob(3000, "Longest document chunk, in characters.", flag="--teacher-chunk-chars", minimum=200)
    holdout: float = knob(
        0.0,
        "Rows split off as an evaluation set before augmentation when no judge: section does it; a fraction (<1) or a count.",
        flag="--teacher-holdout",
        minimum=0.0,
    )
    max_new_tokens: int = knob(
        1024, "Longest teacher answer, in tokens.", flag="--teacher-max-new-tokens", minimum=16, maximum=16384
    )
    max_cost_usd: float | None = knob(
        None,
        "Stop calling the teacher at this spend (the rows done are kept and a re-run continues); a batch may overshoot by "
        "what is in flight.",
        flag="--teacher-max-cost",
        minimum=0.0,
    )
    confirm_above_usd: float = knob(
        1.0,
        "Ask before enhancing when the estimated cost (capped by max_cost_usd) is above this, or unknown; 0 always asks.",
        flag="--teacher-confirm-above",
        minimum=0.0,
    )
    batch: str = knob(
        "auto",
        "Message Batches at half price (anthropic only): on, off, or auto (on from batch_above rows).",
        flag="--teacher-batch",
        choices=BATCH_MODES,
    )
    batch_above: int = knob(
        500,
        "With batch: auto, requests from which a batch is used (a batch may take up to an hour).",
        flag="--teacher-batch-above",
        minimum=1,
    )
    poll_seconds: float = knob(30.0, "Seconds between looks at a running batch.", flag="--teacher-poll", minimum=0.0)
    concurrency: int = knob(
        8, "Teacher requests in flight at once (halved on 429, grows back).", flag="--teacher-concurrency", minimum=1
    )
    timeout: float = knob(
        120.0, "Seconds before one teacher request is abandoned and retried.", flag="--teacher-timeout", minimum=1.0
    )
    prompts: str | None = knob(
        None,
        "A folder with your own improve.md / paraphrase.md (copies of unsloth_nb/teacher/prompts/*.md, edited).",
        flag="--teacher-prompts",
    )
    out: str | None = knob(
        None, "Where to write the enhanced dataset (default: teacher/enhanced.jsonl in the job folder).", flag="--teacher-out"
    )
    prices: dict[str, str] = knob(
        {}, "Price overrides, USD per million tokens input/output, e.g. {my-model: 0/0}.", flag="--teacher-prices"
    )

    def section_problems(self) -> list[ConfigError]:
        if not self.enabled:
            return []
        errors: list[ConfigError] = []
        unknown = [op for op in self.operations if op not in TEACHER_OPERATIONS]
        if unknown or not self.operations:
            errors.append(
                ConfigError(
                    "teacher.operations",
                    f"{', '.join(map(repr, unknown)) or 'none given'}: use one or more of {', '.join(TEACHER_OPERATIONS)}",
                )
            )
        if "generate" in self.operations and not self.documents:
            errors.append(
                ConfigError(
                    "teacher.documents", "generate writes Q&A from documents: name .txt, .md or .pdf files in teacher.documents"
                )
            )
        if self.documents and "generate" not in self.operations:
            errors.append(ConfigError("teacher.operations", "teacher.documents are given: add generate to teacher.operations"))
        errors += endpoint_problems("teacher", self.provider, self.base_url)
        if not self.model.strip():
            errors.append(ConfigError("teacher.model", f"no teacher model given; e.g. {DEFAULT_TEACHER_MODEL}"))
        if self.batch == "on" and self.provider != "anthropic":
            errors.append(
                ConfigError(
                    "teacher.batch",
                    "batch mode uses Anthropic's Message Batches: set teacher.provider to anthropic or batch to off",
                )
            )
        errors += holdout_problems("teacher", self.holdout)
        errors += price_problems("teacher", self.prices)
        return errors


__all__ = ["BATCH_MODES", "DEFAULT_TEACHER_MODEL", "TEACHER_OPERATIONS", "TEACHER_PROVIDERS", "TeacherConfig"]
