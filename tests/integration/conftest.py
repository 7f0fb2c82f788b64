"""Fixtures shared by the integration tests: the tiny model and real rows from shared/data."""

from __future__ import annotations

import json
import os
from itertools import islice
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

# torch's OpenMP threads spin while they wait for work. On a busy 2-core CI runner (other
# test processes, kernels, a browser) spinning threads starve each other: SmolLM2 steps took
# 10-48 s instead of 1.5 s. Sleeping waiters avoid that; read once, when torch first loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def superbowl_rows() -> list[dict]:
    """The first 40 Super Bowl LIX prompt/completion pairs (real data, MIT)."""
    with (SHARED_DATA / "superbowl-qa" / "train.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in islice(handle, 40)]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, superbowl_rows: list[dict]) -> Path:
    """A tiny random Llama whose tokenizer learned its merges from the test rows; built once per session.

    ``unsloth`` is imported first, as in a real run, so transformers is patched before use.
    """
    from unsloth_nb.engine.model import import_unsloth
    from unsloth_nb.testing import build_tiny_model

    import_unsloth()
    texts = [row["prompt"] + "\n" + row["completion"] for row in superbowl_rows]
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama", vocab_texts=texts)
