"""Did it get better? An LLM judge compares the fine-tuned model with its base on held-out questions.

Held-out questions (:mod:`.holdout`) -> both models' answers, greedy and batched, the base with the adapter
switched off (:mod:`.answers`, where the model is) -> pairwise judging in both orders on this machine
(:mod:`.protocol`, :mod:`.judging`) -> win / tie / loss with a bootstrap interval (:mod:`.report`).
Light to import: torch, pandas and the SDKs load when used.
"""

from unsloth_nb.evaluate.report import EvaluationReport, RowResult
from unsloth_nb.evaluate.run import EvaluationError, evaluate_job, split_for_judge

__all__ = ["EvaluationError", "EvaluationReport", "RowResult", "evaluate_job", "split_for_judge"]
