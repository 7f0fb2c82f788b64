"""scripts/runpod_smoke.py: refuses without a cap or a key, and runs end to end against the RunPod emulator.

The script is for a maintainer's real account and never runs against RunPod in CI;
here RUNPOD_API_BASE_URL and the proxy point at the emulator (the runpod_emulator
fixture), and the model is the local tiny one.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from unsloth_nb.testing.runpod_emulator import RunPodEmulator

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "runpod_smoke.py"


@pytest.fixture(scope="module")
def smoke() -> ModuleType:
    spec = importlib.util.spec_from_file_location("runpod_smoke", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["runpod_smoke"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("flags", "why"),
    [
        (["--max-cost", "0"], "never rents without a cap"),
        (["--max-minutes", "-1"], "never rents without a cap"),
        (["--max-cost", "5"], "above what a smoke test needs"),
        (["--max-minutes", "120"], "above what a smoke test needs"),
        ([], "RUNPOD_API_KEY is not set"),
    ],
)
def test_it_refuses_without_a_cap_or_a_key(
    smoke: ModuleType,
    flags: list[str],
    why: str,
    runpod_emulator: RunPodEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    assert smoke.main(flags) == 2
    assert why in capsys.readouterr().err
    assert runpod_emulator.api_calls == []


def test_the_defaults_are_a_quarter_dollar_and_ten_minutes(smoke: ModuleType) -> None:
    args = smoke.parse_args([])
    assert (args.max_cost, args.max_minutes, args.model) == (0.25, 10.0, "HuggingFaceTB/SmolLM2-135M-Instruct")


@pytest.mark.slow
def test_one_capped_run_on_the_emulator_trains_downloads_and_ends_the_pod(
    smoke: ModuleType, runpod_emulator: RunPodEmulator, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert smoke.main(["--model", str(tiny_model)]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    offered = [g for g in runpod_emulator.gpus.values() if g.secure_price and g.available and g.memory_gb >= 8]
    cheapest = min(offered, key=lambda g: g.secure_price or 0.0)
    assert f"cheapest GPUs in stock: {cheapest.id}," in out
    assert "training" in out and "cost: $" in out and "pod terminated (RunPod no longer lists it): yes" in out
    assert runpod_emulator.ledger.running_pods() == []
