"""Both models' answers from the job's served endpoint, for a job whose model this machine cannot load.

After ``job.serve()``, one RunPod serverless vLLM endpoint answers for the fine-tune (``model=<job id>``) and
its base (``model=<base model>``), so ``job.evaluate()`` asks it for both answers to every held-out question
through the official ``openai`` SDK instead of loading the model here: a 70B adapter can be judged from a
laptop. The decoding is the judge's (greedy unless ``judge.decoding: generate``), sent as the request's
sampling fields; vLLM applies the chat template of ``TOKENIZER_NAME`` (the adapter's). The answers are saved
where generated ones go, so a re-run reuses them.

The questions go one at a time, fine-tune then base: the serving worker's batching decides the speed, and
the emulator's endpoint switches one model's adapter on and off between them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.evaluate.answers import AnswerPair, AnswerSet

if TYPE_CHECKING:
    from unsloth_nb.backends.runpod_serverless.serve import Served
    from unsloth_nb.config import GenerateConfig, JudgeConfig
    from unsloth_nb.evaluate.holdout import HeldOut

#: Per answer: a cold worker first loads the model, so the first one may take minutes.
ANSWER_TIMEOUT_S = 600.0


def answers_from_endpoint(
    served: Served,
    heldout: HeldOut,
    judge: JudgeConfig,
    output_dir: Path,
    generate: GenerateConfig | None = None,
    emit: Callable[..., Any] | None = None,
    *,
    api_key: str,
) -> AnswerSet:
    """The answers file when it fits these questions and cap; else ask the endpoint for both answers and save them.

    ``api_key`` is RunPod's (the endpoint's OpenAI route takes it): handed in, as this layer never reads backends.
    """
    from unsloth_nb.engine.generation import judge_settings
    from unsloth_nb.evaluate.run import EvaluationError

    existing = AnswerSet.load(output_dir)
    if existing is not None and existing.matches(heldout.items, judge.max_new_tokens):
        return existing
    from openai import OpenAI

    settings = judge_settings(judge.decoding, judge.max_new_tokens, generate)
    sampling: dict[str, Any] = {"max_tokens": settings.max_new_tokens}
    if settings.greedy:
        sampling["temperature"] = 0
    elif settings.temperature is not None:
        sampling["temperature"] = settings.temperature
        if settings.top_p is not None:
            sampling["top_p"] = settings.top_p
    client = OpenAI(base_url=served.base_url, api_key=api_key, max_retries=2, timeout=ANSWER_TIMEOUT_S)
    say = emit or (lambda kind, /, **data: None)
    say("log", level="info", source="evaluation", message=f"answers from the served endpoint {served.endpoint_id}")
    started = time.perf_counter()
    pairs: list[AnswerPair] = []
    total = 2 * len(heldout.items)
    for item in heldout.items:
        answers = []
        for model in (served.adapter_name, served.base_model):
            try:
                reply = client.chat.completions.create(model=model, messages=item.messages, **sampling)  # type: ignore[arg-type]
            except Exception as exc:
                raise EvaluationError(
                    f"the served endpoint {served.endpoint_id} did not answer for {model}: {exc}; check it with "
                    "`unsloth-nb runpod endpoints list`, or stop serving (job.stop_serving()) to answer here"
                ) from None
            answers.append(reply.choices[0].message.content or "")
        pairs.append(AnswerPair(item.id, item.question, item.reference, base=answers[1], finetuned=answers[0]))
        say("evaluation", stage="answers", done=2 * len(pairs), total=total)
    result = AnswerSet(pairs, settings.max_new_tokens, 1, time.perf_counter() - started, judge.decoding)
    result.save(output_dir)
    return result
