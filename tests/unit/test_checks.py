"""Preflight: what used to fail only once the model loaded (on RunPod, after renting) is refused while planning.

Also: every mistake of a job in one pass, every missing key named at once, and defaults the
user never set adjusted to fit rather than refused.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import struct
from pathlib import Path

import pytest

from unsloth_nb.config import TrainConfig
from unsloth_nb.demo import demo_dataset_path
from unsloth_nb.errors import ConfigError, InputErrors, MissingSecretError
from unsloth_nb.flags import read_train_args
from unsloth_nb.jobrun.checks import (
    UNSLOTH_CHAT_TEMPLATES,
    check_chat_template,
    check_target_modules,
    model_module_names,
)
from unsloth_nb.jobrun.preflight import prepare

MODEL_2K = Path(__file__).resolve().parents[1] / "data" / "bad" / "short_context_model"
DEMO = str(demo_dataset_path())


def unsloth_template_names() -> list[str]:
    """The keys of unsloth.chat_templates.CHAT_TEMPLATES, read from unsloth's source without importing unsloth."""
    spec = importlib.util.find_spec("unsloth")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("unsloth is not installed")
    source = Path(next(iter(spec.submodule_search_locations))) / "chat_templates.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    names: list[str] = []

    def keys(statement: ast.stmt, loop: dict[str, list[str]]) -> None:
        if not isinstance(statement, ast.Assign):
            return
        for target in statement.targets:
            if isinstance(target, ast.Subscript) and getattr(target.value, "id", None) == "CHAT_TEMPLATES":
                if isinstance(target.slice, ast.Constant):
                    names.append(target.slice.value)
                elif isinstance(target.slice, ast.Name) and target.slice.id in loop:
                    names.extend(loop[target.slice.id])

    for node in tree.body:
        keys(node, {})
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name) and isinstance(node.iter, (ast.Tuple, ast.List)):
            values = [e.value for e in node.iter.elts if isinstance(e, ast.Constant)]
            for statement in node.body:
                keys(statement, {node.target.id: values})
    assert len(names) > 20, f"unsloth's CHAT_TEMPLATES was not found in {source}"
    return names


def test_our_template_list_matches_the_installed_unsloth() -> None:
    assert sorted(UNSLOTH_CHAT_TEMPLATES) == sorted(set(unsloth_template_names()))


def config(**flat: object) -> TrainConfig:
    return TrainConfig.from_dict({"model": str(MODEL_2K), "dataset": DEMO, **flat})


def test_an_unknown_chat_template_is_refused_with_the_closest_name() -> None:
    error = check_chat_template(config(model={"name": str(MODEL_2K), "chat_template": "llama3.1"}))

    assert error is not None and error.field == "model.chat_template"
    assert "no chat template 'llama3.1'" in str(error) and "did you mean 'llama-3.1'?" in str(error)
    assert check_chat_template(config(model={"name": str(MODEL_2K), "chat_template": "qwen3-instruct"})) is None
    assert check_chat_template(config()) is None  # none given: the tokenizer's own


def write_safetensors(folder: Path, names: list[str]) -> None:
    """A weights file whose header names these tensors (4 bytes each): enough to read its module names."""
    header = {name: {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i, name in enumerate(names)}
    raw = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(4 * len(names)))


def test_target_modules_are_checked_against_the_weights(tmp_path: Path) -> None:
    folder = tmp_path / "gpt-like"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 64, "n_layer": 2}))
    write_safetensors(folder, ["h.0.attn.c_attn.weight", "h.0.attn.c_attn.bias", "h.0.mlp.c_fc.weight", "wte.weight"])

    names, source = model_module_names(str(folder)) or (set(), "")
    assert names == {"h.0.attn.c_attn", "h.0.mlp.c_fc", "wte"} and "weights in" in source

    wrong = check_target_modules(config(model=str(folder), lora={"target_modules": ["q_proj", "c_attn"]}))
    assert wrong is not None and wrong.field == "lora.target_modules"
    assert "has no module 'q_proj'" in str(wrong) and "c_attn" in str(wrong)
    assert check_target_modules(config(model=str(folder), lora={"target_modules": ["c_attn", "mlp.c_fc"]})) is None


def test_target_modules_are_checked_against_the_model_type_when_there_are_no_weights() -> None:
    wrong = check_target_modules(config(lora={"target_modules": "q_proj,k_prj"}))

    assert wrong is not None and "has no module 'k_prj'" in str(wrong) and "did you mean 'k_proj'?" in str(wrong)
    assert check_target_modules(config()) is None  # Unsloth's default list


def test_target_modules_of_an_unknown_model_get_only_the_shape_check() -> None:
    hub_id = TrainConfig.from_dict({"model": "someone/Unknown-7B", "dataset": DEMO, "lora": {"target_modules": "q_prj"}})
    assert check_target_modules(hub_id) is None  # nothing here to check the name against
    spaced = TrainConfig.from_dict({"model": "someone/Unknown-7B", "dataset": DEMO, "lora": {"target_modules": "q_proj k_proj"}})
    error = check_target_modules(spaced)
    assert error is not None and "'q_proj k_proj' is not a module name" in str(error)


@pytest.mark.parametrize("pasted", ["[q_proj,k_proj]", "['q_proj', 'k_proj']", '["q_proj","k_proj"]', "q_proj, k_proj"])
def test_a_pasted_list_of_target_modules_is_a_list(pasted: str) -> None:
    parsed, _, mistakes = read_train_args(["--model", str(MODEL_2K), "--dataset", DEMO, "--target-modules", pasted])
    assert mistakes == []
    assert parsed.lora.target_modules == ["q_proj", "k_proj"]
    assert check_target_modules(parsed) is None


def test_a_default_max_seq_length_above_the_model_is_clamped_but_the_users_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "model-1k"
    folder.mkdir()
    model = json.loads((MODEL_2K / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**model, "max_position_embeddings": 1024}))

    prepared = prepare(TrainConfig.from_dict({"model": str(folder), "dataset": DEMO, "placement": "local"}), tmp_path)
    assert prepared.config.train.max_seq_length == 1024

    with pytest.raises(ConfigError, match=r"max_position_embeddings is 1,024"):
        user = TrainConfig.from_dict(
            {"model": str(folder), "dataset": DEMO, "placement": "local", "train": {"max_seq_length": 2048}}
        )
        prepare(user, tmp_path)


def test_every_mistake_of_a_job_in_one_pass(tmp_path: Path) -> None:
    """`--model x --dataset missing.jsonl --lora-r 0` used to take three runs to reveal three mistakes."""
    parsed, _, mistakes = read_train_args(
        ["--model", str(tmp_path / "no-model"), "--dataset", "missing.jsonl", "--lora-r", "0", "--chat-template", "nope"]
    )
    with pytest.raises(InputErrors) as caught:
        prepare(parsed, tmp_path, earlier=mistakes)

    fields = [error.field for error in caught.value.errors()]
    assert fields == ["lora.r", "dataset.path", "model.name", "model.chat_template"], caught.value
    text = str(caught.value)
    assert text.startswith("4 problems; nothing was started:")
    assert "must be at least 1" in text and "dataset not found: missing.jsonl" in text and "no model folder" in text


def test_every_missing_key_is_named_at_once_without_offering_a_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RUNPOD_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    job = TrainConfig.from_dict({"model": str(MODEL_2K), "dataset": DEMO, "placement": "runpod", "hub": {"repo_id": "me/lora"}})

    with pytest.raises(MissingSecretError) as caught:
        prepare(job, tmp_path)

    assert caught.value.variables == ["HF_TOKEN", "RUNPOD_API_KEY"]
    assert "export HF_TOKEN=... RUNPOD_API_KEY=..." in str(caught.value)
    assert "prompt" not in str(caught.value)

    # Where a prompt is possible the keys are not an error yet: the caller shows the plan, then asks.
    prepared = prepare(job, tmp_path, prompt_for_secrets=True)
    assert [name for name, _ in prepared.missing_secrets] == ["HF_TOKEN", "RUNPOD_API_KEY"]
    from unsloth_nb.jobrun.controller import start_job

    with pytest.raises(MissingSecretError, match="HF_TOKEN"):
        start_job(prepared)  # never without its keys


def test_unsloths_default_targets_and_mixture_of_experts_are_left_to_unsloth(tmp_path: Path) -> None:
    """Unsloth maps its default names (and MoE expert weights) onto each architecture itself: never refuse those."""
    folder = tmp_path / "gpt-like"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    write_safetensors(folder, ["h.0.attn.c_attn.weight"])
    assert check_target_modules(config(model=str(folder))) is None  # the default list, not the user's

    moe = tmp_path / "moe"
    moe.mkdir()
    (moe / "config.json").write_text(json.dumps({"model_type": "gpt_oss", "num_local_experts": 32}))
    write_safetensors(moe, ["model.layers.0.mlp.experts.gate_up_proj", "model.layers.0.self_attn.q_proj.weight"])
    assert model_module_names(str(moe)) is None
    assert check_target_modules(config(model=str(moe), lora={"target_modules": "q_proj,gate_proj"})) is None
