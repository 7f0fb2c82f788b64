"""Export settings: save.gguf / save.ollama / save.merged_4bit and hub.push, as a user writes them."""

from __future__ import annotations

import pytest

from unsloth_nb.config import TrainConfig
from unsloth_nb.config.export import exports_wanted, gguf_types, push_repo_ids
from unsloth_nb.errors import UnslothNbError
from unsloth_nb.phases.export import ExportPhase
from unsloth_nb.phases.registry import all_phases
from unsloth_nb.phases.runner import phases_for

BASE = {"model": "unsloth/Llama-3.2-1B-Instruct", "dataset": "qa.jsonl"}


def config(**sections: object) -> TrainConfig:
    return TrainConfig.from_dict({**BASE, **sections})


def test_the_notebooks_gguf_settings_are_read_with_unslothss_names_too() -> None:
    c = config(save={"gguf": ["q4_k_m", "Q8_0", "not_quantized", "f16"], "ollama": True})
    assert gguf_types(c.save) == ["q4_k_m", "q8_0", "f16"]
    assert c.save.ollama is True
    assert exports_wanted(c.save, c.hub)


def test_flags_give_the_list_comma_separated() -> None:
    from unsloth_nb.flags import parse_train_args

    c, _ = parse_train_args(
        ["--model", "m", "--dataset", "d.jsonl", "--save-gguf", "q4_k_m,f16", "--hub-id", "me/m", "--hub-push", "adapter,gguf"]
    )
    assert c.save.gguf == ["q4_k_m", "f16"]
    assert c.hub.push == ["adapter", "gguf"]


def test_mistakes_are_refused_with_what_to_write() -> None:
    with pytest.raises(UnslothNbError) as caught:
        config(save={"gguf": ["q9_x"], "ollama": True}, hub={"repo_id": "me/m", "push": ["merged", "gguf"]})
    text = str(caught.value)
    assert "save.gguf: 'q9_x' is not a GGUF type" in text and "q4_k_m" in text
    assert "hub.push: 'merged': hub.push names some of adapter, merged_16bit, merged_4bit, gguf" in text
    with pytest.raises(UnslothNbError, match=r"save\.ollama: an Ollama Modelfile points at a GGUF file"):
        config(save={"ollama": True})
    with pytest.raises(UnslothNbError, match="pushing gguf needs GGUF files"):
        config(hub={"repo_id": "me/m", "push": ["gguf"]})


def test_the_adapter_only_default_is_unchanged() -> None:
    c = config(hub={"repo_id": "me/lora"})
    assert c.hub.push == ["adapter"]
    assert push_repo_ids(c.hub) == {"adapter": "me/lora"}
    assert not exports_wanted(c.save, c.hub)
    assert "export" not in [p.name for p in phases_for(c, runs_on="model")]


def test_one_pushed_target_takes_the_repo_several_get_one_each() -> None:
    assert push_repo_ids(config(hub={"repo_id": "me/m", "push": ["merged_16bit"]}).hub) == {"merged_16bit": "me/m"}
    several = config(save={"gguf": ["q4_k_m"]}, hub={"repo_id": "me/m", "push": ["gguf", "adapter", "merged_16bit"]})
    assert push_repo_ids(several.hub) == {"adapter": "me/m", "merged_16bit": "me/m-merged-16bit", "gguf": "me/m-GGUF"}


def test_the_export_phase_runs_where_the_model_is_after_the_answers_and_asks_for_hf_token_only_to_push() -> None:
    names = [p.name for p in all_phases()]
    assert names.index("export") == names.index("answers") + 1
    phase = ExportPhase()
    local = config(save={"gguf": ["q4_k_m"]})
    assert phase.applies(local)
    assert phase.needs(local).secrets == () and phase.needs(local).runs_on == "model"
    pushed = config(save={"gguf": ["q4_k_m"]}, hub={"repo_id": "me/m", "push": ["gguf"]})
    assert phase.needs(pushed).secrets == ("HF_TOKEN",)
    # The adapter goes nowhere when hub.push leaves it out: the save phase needs no token then.
    save = next(p for p in all_phases() if p.name == "save")
    assert save.needs(pushed).secrets == ()
    assert save.needs(config(hub={"repo_id": "me/m"})).secrets == ("HF_TOKEN",)
