"""The ``judge:`` section: the LLM judge that compares the fine-tune with its base (issue 12)."""

from __future__ import annotations

from dataclasses import dataclass

from unsloth_nb.config.llm_rules import endpoint_problems, holdout_problems, price_problems
from unsloth_nb.config.schema import knob
from unsloth_nb.errors import ConfigError

#: The judge's default model: OpenAI's gpt-5-mini, a current, inexpensive model of another family than the
#: Claude teacher (self-preference bias), strong enough for pairwise verdicts on short answers.
DEFAULT_JUDGE_MODEL = "gpt-5-mini"
JUDGE_PROVIDERS = ("openai", "openai-compatible", "anthropic")


@dataclass
class JudgeConfig:
    """An LLM judge compares the fine-tuned model with its base on held-out questions, after training.

    A ``judge:`` section turns it on (``enabled`` defaults to true when the section is given). The judge runs
    on this machine only (its key, OPENAI_API_KEY or ANTHROPIC_API_KEY, never goes to a pod).
    """

    #: A ``judge:`` section given without ``enabled`` turns the judge on (see :func:`sections_enable`).
    ENABLED_BY_SECTION = True

    enabled: bool = knob(False, "Evaluate with an LLM judge after training (a judge: section turns it on).", flag="--judge")
    provider: str = knob(
        "openai",
        "Judge API: openai (OPENAI_API_KEY), anthropic (ANTHROPIC_API_KEY) or openai-compatible (any server at base_url).",
        flag="--judge-provider",
        choices=JUDGE_PROVIDERS,
    )
    model: str = knob(DEFAULT_JUDGE_MODEL, "Judge model id (default gpt-5-mini).", flag="--judge-model")
    base_url: str | None = knob(
        None,
        "Base URL of the judge API (required for openai-compatible, e.g. http://localhost:8000/v1).",
        flag="--judge-base-url",
    )
    eval_path: str | None = knob(
        None,
        "File of held-out questions (any dataset format; answers are shown to the judge as references). "
        "Default: dataset.eval_path, else the holdout rows.",
        flag="--judge-eval",
    )
    holdout: float = knob(
        0.1,
        "Without an eval file: rows held out of training for the judge; a fraction (<1) or a count (>=1).",
        flag="--judge-holdout",
        minimum=0.0,
    )
    max_questions: int | None = knob(None, "Judge at most this many held-out questions.", flag="--judge-max-questions", minimum=1)
    max_new_tokens: int = knob(
        256, "Longest answer generated per question.", flag="--judge-max-new-tokens", minimum=1, maximum=8192
    )
    decoding: str = knob(
        "greedy",
        "How the judged answers are generated: greedy (default: both models give their most likely answer, so the "
        "comparison is not decided by one sample's luck) or generate (the generate: section's sampling). "
        "generate.enable_thinking applies either way.",
        flag="--judge-decoding",
        choices=("greedy", "generate"),
    )
    batch_size: int = knob(8, "Questions answered together in one generate call.", flag="--judge-batch-size", minimum=1)
    max_cost_usd: float | None = knob(
        None, "Stop judging at this spend; rows not judged are reported as such.", flag="--judge-max-cost", minimum=0.0
    )
    confirm_above_usd: float = knob(
        1.0,
        "Ask before judging when the estimated cost (capped by max_cost_usd) is above this, or unknown; 0 always asks.",
        flag="--judge-confirm-above",
        minimum=0.0,
    )
    concurrency: int = knob(
        8, "Judge requests in flight at once (halved on 429, grows back).", flag="--judge-concurrency", minimum=1
    )
    timeout: float = knob(
        120.0, "Seconds before one judge request is abandoned and retried.", flag="--judge-timeout", minimum=1.0
    )
    rubric: str | None = knob(
        None, "Your own judging prompt (a copy of unsloth_nb/evaluate/rubric.md, edited).", flag="--judge-rubric"
    )
    prices: dict[str, str] = knob(
        {},
        "Price overrides, USD per million tokens input/output, e.g. {my-model: 0/0, gpt-5-mini: 0.25/2}.",
        flag="--judge-prices",
    )

    def section_problems(self) -> list[ConfigError]:
        """Rules between this section's fields (TrainConfig asks every section that has this method)."""
        return _judge_problems(self)


def _judge_problems(judge: JudgeConfig) -> list[ConfigError]:
    """Every mistake in an enabled ``judge:`` section (none when it is off)."""
    if not judge.enabled:
        return []
    errors: list[ConfigError] = []
    errors += endpoint_problems("judge", judge.provider, judge.base_url)
    if not judge.model.strip():
        errors.append(
            ConfigError("judge.model", "no judge model given; e.g. gpt-5-mini (openai) or claude-haiku-4-5 (anthropic)")
        )
    errors += holdout_problems("judge", judge.holdout)
    errors += price_problems("judge", judge.prices)
    return errors
