"""Did it get better? An LLM judge compares the fine-tuned model with its base on held-out questions.

Held-out questions (:mod:`.holdout`) -> both models' answers, greedy and batched, the base with the adapter
switched off (:mod:`.answers`, where the model is) -> pairwise judging in both orders on this machine
(:mod:`.protocol`, :mod:`.judging`) -> win / tie / loss with a bootstrap interval (:mod:`.report`).
A finished job is judged by :func:`unsloth_nb.jobrun.evaluation.evaluate_job`. Light to import: torch, pandas and the SDKs load when used.
"""

from unsloth_nb.evaluate.report import EvaluationReport, RowResult
from unsloth_nb.evaluate.run import EvaluationError, split_for_judge

__all__ = ["EvaluationError", "EvaluationReport", "RowResult", "split_for_judge"]
