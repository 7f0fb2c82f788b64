"""``placement:`` offers exactly the placements the backend registry builds, from one table."""

from __future__ import annotations

import pytest

from unsloth_nb.backends.registry import backend_names, get_backend
from unsloth_nb.config import TrainConfig, field_specs
from unsloth_nb.errors import ConfigError
from unsloth_nb.placements import BUILTIN_BACKENDS


def test_the_placement_choices_are_auto_and_every_built_in_backend() -> None:
    spec = next(s for s in field_specs(TrainConfig) if s.path == "placement")
    assert spec.choices == ("auto", *backend_names()[: len(BUILTIN_BACKENDS)])
    assert [get_backend(name).name for name in BUILTIN_BACKENDS] == list(BUILTIN_BACKENDS)


def test_a_placement_no_backend_answers_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"placement.*not one of: auto, local, runpod"):
        TrainConfig.from_dict({"model": "m", "dataset": "d.jsonl", "placement": "moon"})
