"""Importing Unsloth's own notebooks: `unsloth-nb import`, `--from FILE`, and notebook cells pasted into a cell.

The 7 notebooks of issue 17 are vendored, outputs stripped, in tests/data/unsloth_notebooks (LGPL-3.0, see its
README). Each import must equal the hand port written beside them (hand_ports/*.yaml, our names for what the
notebook's executed cells ask for) and the config it writes must pass ``plan`` offline.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fixtures import ALPACA_SEED, SUPERBOWL_TRAIN
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import unsloth_nb
from unsloth_nb.cli import main
from unsloth_nb.config import TrainConfig
from unsloth_nb.data import prepare_dataset
from unsloth_nb.demo import demo_dataset_path
from unsloth_nb.errors import ConfigError
from unsloth_nb.flags import read_train_args
from unsloth_nb.importer import import_code, import_file, looks_like_notebook_code
from unsloth_nb.testing.hub_emulator import LoopbackHub

NOTEBOOKS = Path(__file__).resolve().parents[1] / "data" / "unsloth_notebooks"
NAMES = sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb"))
DEMO = demo_dataset_path()


def notebook(name: str) -> Path:
    return NOTEBOOKS / f"{name}.ipynb"


def hand_port(name: str) -> dict:
    return yaml.safe_load((NOTEBOOKS / "hand_ports" / f"{name}.yaml").read_text())


def test_the_seven_notebooks_of_issue_17_are_vendored_without_outputs() -> None:
    assert len(NAMES) == 7
    assert "LESSER GENERAL PUBLIC LICENSE" in (NOTEBOOKS / "LICENSE").read_text()
    for name in NAMES:
        cells = json.loads(notebook(name).read_text())["cells"]
        assert all(not cell.get("outputs") for cell in cells if cell["cell_type"] == "code"), name


@pytest.mark.parametrize("name", NAMES)
def test_an_imported_notebook_matches_its_hand_port_and_plans(name: str, tmp_path: Path) -> None:
    result = import_file(notebook(name))

    assert result.config == hand_port(name)
    written = tmp_path / "config.yaml"
    written.write_text(result.to_yaml())
    data = yaml.safe_load(written.read_text())
    assert data == result.config  # exports included: every field is live
    assert TrainConfig.from_dict(data).dataset.path or TrainConfig.from_dict(data).dataset.mix  # Hub ids, mixes: valid
    # This test is offline (the notebooks' Hub datasets are not on the loopback Hub): a local file stands in,
    # replacing the imported path or mix (Qwen3's) as a flag does.
    plan = unsloth_nb.plan(str(written), dataset=str(DEMO))
    assert plan.model == hand_port(name)["model"]["name"]
    assert plan.placement == "runpod"  # 3B to 14B models: a GPU is rented, the CPU is never proposed


def test_each_knob_not_mapped_is_reported_with_its_cell_and_line() -> None:
    mistral = import_file(notebook("Mistral_v0.3_(7B)-Conversational"))
    qwen = import_file(notebook("Qwen3_(14B)-Reasoning-Conversational"))
    ollama = import_file(notebook("Llama3_(8B)-Ollama"))

    assert any(str(n).startswith("cell 11, line 3: map_eos_token = True") for n in mistral.unmapped)
    assert any(str(n).startswith("cell 33, line 7: padding_free = False") for n in qwen.unmapped)
    assert any(str(n).startswith("cell 40, line 4: enable_thinking = True not kept") for n in qwen.unmapped)
    assert any("2 datasets are mixed in code" in str(n) and "weight 1" in str(n) for n in qwen.unmapped)
    assert any("split differs between the mixed datasets" in str(n) and "cot" in str(n) for n in qwen.unmapped)
    assert any(str(n).startswith("cell 16, line 3: to_sharegpt(") for n in ollama.unmapped)
    report = mistral.report()
    assert "4 knobs not mapped" in report and "cell 11, line 3" in report
    # what the notebook offers under `if False:` is said, not silently dropped, and not turned on
    assert any("cell 33, line 6" in str(n) and "save.merged_4bit: true" in str(n) for n in mistral.offered)
    assert "merged_4bit" not in json.dumps(mistral.config)


def test_a_value_we_fix_is_accepted_when_it_matches_and_refused_with_the_reason_when_not() -> None:
    result = import_code(
        'model, tokenizer = FastLanguageModel.from_pretrained(model_name = "unsloth/Llama-3.2-1B-Instruct")\n'
        'model = FastLanguageModel.get_peft_model(model, r = 8, bias = "all", loftq_config = None)\n'
    )

    assert result.config == {"model": {"name": "unsloth/Llama-3.2-1B-Instruct"}, "lora": {"r": 8}}
    assert [str(n) for n in result.unmapped] == [
        "line 2: bias = \"all\": unsloth-nb trains LoRA with bias='none' (Unsloth's optimised path); "
        "remove bias or set it to 'none'"
    ]
    assert any("loftq_config = None" in str(n) for n in result.handled)


def test_constants_resolve_across_cells_and_computed_values_are_reported_not_guessed() -> None:
    result = import_code(
        "max_seq_length = 1024\nrank = 4 * 2\n"
        "model, tokenizer = FastLanguageModel.from_pretrained(model_name = 'm/x', max_seq_length = max_seq_length)\n"
        "model = FastLanguageModel.get_peft_model(model, r = rank, lora_alpha = rank * 2)\n"
        "trainer = SFTTrainer(model = model, args = SFTConfig(learning_rate = lr_from_somewhere, fp16 = not is_bf16()))\n"
    )

    assert result.config["train"] == {"max_seq_length": 1024, "train_on_responses_only": False}  # no masking call
    assert result.config["lora"] == {"r": 8, "alpha": 16}
    notes = [str(n) for n in result.unmapped]
    assert "line 5: learning_rate = lr_from_somewhere: computed when the notebook runs; set train.lr by hand" in notes
    assert any(n.startswith("line 5: fp16 = not is_bf16(): unsloth-nb picks the precision") for n in notes)


def test_the_ollama_notebooks_gguf_export_and_modelfile_are_live_fields() -> None:
    result = import_file(notebook("Llama3_(8B)-Ollama"))

    assert result.config["save"] == {"output_dir": "outputs", "gguf": ["q8_0"], "ollama": True}
    assert "gguf: [q8_0]" in result.to_yaml() and "# -- " not in result.to_yaml()
    config = TrainConfig.from_dict({**yaml.safe_load(result.to_yaml()), "dataset": str(DEMO)})
    assert (config.save.gguf, config.save.ollama, config.problems()) == (["q8_0"], True, [])
    # the notebook's other GGUF cells are under `if False:`: offered, not turned on
    assert any("cell 42, line 12" in str(n) and "save.gguf: [q4_k_m]" in str(n) for n in result.offered)


def test_active_export_and_push_calls_become_save_and_hub_push_fields() -> None:
    result = import_code(
        'model, tokenizer = FastLanguageModel.from_pretrained(model_name = "unsloth/Llama-3.2-1B-Instruct")\n'
        'model.save_pretrained_merged("model", tokenizer, save_method = "merged_16bit")\n'
        'model.push_to_hub_merged("me/m4", tokenizer, save_method = "merged_4bit", token = "hf_x")\n'
        'model.push_to_hub_merged("me/m4", tokenizer, save_method = "lora")\n'
        'model.save_pretrained_gguf("model", tokenizer, quantization_method = ["q4_k_m", "not_quantized"])\n'
        'model.push_to_hub_gguf("me/m4", tokenizer, quantization_method = "Q8_0")\n'
        'model.save_pretrained_gguf("model", tokenizer)\n'
    )

    assert result.config["save"] == {
        "merged_16bit": True,
        "merged_4bit": True,
        "gguf": ["q4_k_m", "not_quantized", "q8_0"],  # Unsloth's names are accepted as they are
    }
    assert result.config["hub"] == {"repo_id": "me/m4", "push": ["merged_4bit", "adapter", "gguf"]}
    assert "hf_x" not in result.to_yaml() and "hf_x" not in json.dumps([str(n) for n in result.handled])
    config = TrainConfig.from_dict({**yaml.safe_load(result.to_yaml()), "dataset": str(DEMO)})
    assert config.problems() == []
    assert sorted(config.hub.push) == ["adapter", "gguf", "merged_4bit"]


def test_an_export_we_cannot_write_is_reported_and_left_out_so_the_config_still_plans(tmp_path: Path) -> None:
    result = import_code(
        'model, tokenizer = FastLanguageModel.from_pretrained(model_name = "unsloth/Llama-3.2-1B-Instruct")\n'
        'model.save_pretrained_gguf("model", tokenizer, quantization_method = ["q4_k_m", "iq2_xxs"])\n'
        'model.save_pretrained_gguf("model", tokenizer, quantization_method = method)\n'
        'model.push_to_hub_merged("me/m", tokenizer, save_method = "mxfp4")\n'
        "print(tokenizer._ollama_modelfile)\n"
    )

    assert result.config["save"] == {"gguf": ["q4_k_m"], "ollama": True}
    assert "hub" not in result.config
    notes = [str(n) for n in result.unmapped]
    assert any(n.startswith("line 2: quantization_method 'iq2_xxs': not a GGUF type") for n in notes)
    assert "line 3: quantization_method = method: computed when the notebook runs; set save.gguf" in notes
    assert any(n.startswith("line 4: save_method = 'mxfp4': unsloth-nb saves lora") for n in notes)
    written = tmp_path / "config.yaml"
    written.write_text(result.to_yaml())
    assert unsloth_nb.plan(str(written), dataset=str(DEMO)).model == "unsloth/Llama-3.2-1B-Instruct"


def test_a_modelfile_read_without_a_gguf_export_is_reported_not_written() -> None:
    result = import_code(
        'model, tokenizer = FastLanguageModel.from_pretrained(model_name = "unsloth/Llama-3.2-1B-Instruct")\n'
        "print(tokenizer._ollama_modelfile)\n"
    )

    assert "save" not in result.config
    assert any(str(n).startswith("line 2: the Ollama Modelfile needs a GGUF file") for n in result.unmapped)


def test_a_local_load_dataset_becomes_the_dataset_path() -> None:
    result = import_code(f'dataset = load_dataset("json", data_files = "{DEMO}", split = "train")\n')
    assert result.config == {"dataset": {"path": str(DEMO), "split": "train"}}


def test_a_hub_dataset_id_is_imported_live_and_reads_from_the_hub(
    loopback_hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("UNSLOTH_NB_DATA_CACHE", str(tmp_path / "data-cache"))
    loopback_hub.add_dataset("org/superbowl", {"qa/train-00000-of-00001.jsonl": SUPERBOWL_TRAIN.read_bytes()})

    result = import_code('dataset = load_dataset("org/superbowl", "qa", split = "train[:12]")\n')

    assert result.config == {"dataset": {"path": "org/superbowl", "config_name": "qa", "split": "train", "max_rows": 12}}
    config = TrainConfig.from_dict({**yaml.safe_load(result.to_yaml()), "model": "m/x"})
    prepared = prepare_dataset(config.dataset, 512)
    assert len(prepared.train) == 12
    assert prepared.origins[0] == "hf://datasets/org/superbowl/qa/train-00000-of-00001.jsonl:1"


def test_datasets_mixed_in_code_become_a_mix_to_weigh() -> None:
    result = import_code(
        'a = load_dataset("org/reasoning", split = "train")\n'
        'b = load_dataset("json", data_files = "chat.jsonl", split = "train[10%:]")\n'
    )

    assert result.config == {"dataset": {"mix": ["org/reasoning=1", "chat.jsonl=1"], "split": "train"}}
    assert TrainConfig.from_dict({**result.config, "model": "m/x"}).dataset.mix == ["org/reasoning=1", "chat.jsonl=1"]
    notes = [str(n) for n in result.unmapped]
    assert any(n.startswith("line 1: 2 datasets are mixed in code") for n in notes)
    assert "line 2: split = 'train[10%:]': a slice other than [:N] has no field; the whole split is read" in notes


def test_a_cell_that_is_not_python_is_refused_with_its_cell_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.ipynb"
    cells = [{"cell_type": "markdown", "source": "# hi"}, {"cell_type": "code", "source": "!pip install unsloth\nx = (\n"}]
    broken.write_text(json.dumps({"cells": cells}))

    with pytest.raises(ConfigError, match=r"cell 2, line 2: not Python"):
        import_file(broken)
    text = tmp_path / "notes.txt"
    text.write_text("")
    with pytest.raises(ConfigError, match=r"expected a notebook \(\.ipynb\) or a Python script"):
        import_file(text)


def test_unsloth_nb_import_writes_the_config_and_reports_what_it_could_not_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "phi4.yaml"

    assert main(["import", str(notebook("Phi_4-Conversational")), "-o", str(out)]) == 0

    said = capsys.readouterr().err
    assert "2 knobs not mapped" in said and "cell 32, line 15" in said
    written = yaml.safe_load(out.read_text())
    assert written["dataset"] == {"path": "mlabonne/FineTome-100k", "split": "train"}  # a Hub id, read where it trains
    config = TrainConfig.from_dict({**written, "dataset": str(DEMO)})
    assert (config.model.name, config.lora.r, config.train.max_steps) == ("unsloth/Phi-4", 16, 30)
    assert (config.generate.temperature, config.generate.min_p, config.generate.max_new_tokens) == (1.5, 0.1, 64)
    assert main(["import", str(tmp_path / "missing.ipynb")]) == 2


def test_from_flag_is_the_lowest_layer_under_the_cell_body_and_flags() -> None:
    config, options, errors = read_train_args(
        ["--from", str(notebook("Gemma3_(4B)")), "--dataset", str(DEMO), "--max-steps", "5"], base={"lora": {"r": 4}}
    )

    assert errors == []
    assert (config.model.name, config.model.chat_template) == ("unsloth/gemma-3-4b-it", "gemma-3")
    assert (config.lora.r, config.lora.alpha, config.train.max_steps) == (4, 8, 5)
    assert (config.generate.top_k, config.generate.top_p) == (64, 0.95)
    assert options.imported is not None and options.imported.source == "Gemma3_(4B).ipynb"


def test_a_dataset_flag_replaces_an_imported_mix_and_a_mix_flag_replaces_a_path() -> None:
    qwen = str(notebook("Qwen3_(14B)-Reasoning-Conversational"))
    config, _options, errors = read_train_args(["--from", qwen, "--dataset", str(DEMO)])
    assert errors == [] and (config.dataset.path, config.dataset.mix) == (str(DEMO), [])

    mix = f"{DEMO}=3,{ALPACA_SEED}=1"
    phi = str(notebook("Phi_4-Conversational"))
    config, _options, errors = read_train_args(["--from", phi, "--dataset-mix", mix])
    assert errors == [] and (config.dataset.path, config.dataset.mix) == ("", [f"{DEMO}=3", f"{ALPACA_SEED}=1"])


def test_notebook_cells_pasted_into_the_cell_magic_are_imported(tmp_path: Path) -> None:
    cells = json.loads(notebook("Llama3.2_(1B_and_3B)-Conversational").read_text())["cells"]
    pasted = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert looks_like_notebook_code(pasted) and not looks_like_notebook_code("model: x\ndataset: y\n")
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "unsloth_nb")

    with capture_output() as captured:
        result = shell.run_cell(f"%%unsloth_train --dataset {DEMO} --dry-run\n{pasted}")

    assert result.success, captured.stdout + captured.stderr
    assert "Imported the pasted notebook cells" in captured.stdout
    assert "Plan: unsloth/Llama-3.2-3B-Instruct" in captured.stdout


def test_a_python_script_imports_like_the_notebook_with_lines_for_places(tmp_path: Path) -> None:
    cells = json.loads(notebook("Phi_4-Conversational").read_text())["cells"]
    script = tmp_path / "phi4.py"
    script.write_text("\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code"))

    from_script, from_notebook = import_file(script), import_file(notebook("Phi_4-Conversational"))

    assert from_script.config == from_notebook.config
    assert all(str(note).startswith("line ") for note in from_script.unmapped)
    assert len(from_script.unmapped) == len(from_notebook.unmapped)


def test_a_token_in_the_notebook_is_never_copied_into_the_config_or_the_notes() -> None:
    secret = "-".join(("hf", "not", "a", "real", "token"))
    result = import_code(
        f'model, tokenizer = FastLanguageModel.from_pretrained(model_name = "m/x", token = "{secret}")\n'
        f'args = SFTConfig(hub_token = "{secret}", push_to_hub = True)\n'
        f'model.push_to_hub("me/lora", token = "{secret}")\n'
    )

    assert secret not in result.to_yaml() and secret not in result.report()
    assert result.config["hub"] == {"repo_id": "me/lora", "push": ["adapter"]}
    assert any(str(n).startswith("line 2: hub_token: secrets never go in a config") for n in result.handled)
