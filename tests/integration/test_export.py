"""The export phase for real: llama.cpp's converter and quantiser, Unsloth's merge, the loopback Hub.

GGUF files are read back with the ``gguf`` reader (tensors, chat template) and loaded by llama.cpp
(llama-cpp-python) to generate; the Ollama Modelfile's TEMPLATE is rendered and compared with the
chat template the model was trained with. Needs the ``gguf`` extra (llama-cpp-python) and PyPI or a
cached copy of llama.cpp's converter (``python -m unsloth_nb.export.tools``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from unsloth_nb.config import TrainConfig
from unsloth_nb.data import DatasetSummary, PreparedDataset
from unsloth_nb.engine import LogHooks
from unsloth_nb.export.gguf_file import read_gguf
from unsloth_nb.jobrun.events import EventLog
from unsloth_nb.phases.runner import run_model_phases
from unsloth_nb.testing.hub_emulator import LoopbackHub
from unsloth_nb.testing.runpod_emulator import RunPodEmulator

pytest.importorskip("llama_cpp", reason="the gguf extra (llama-cpp-python) is not installed")


def conversations(rows: list[dict], n: int) -> PreparedDataset:
    data = [
        {"messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["completion"][:80]}]}
        for r in rows[:n]
    ]
    return PreparedDataset(data, None, DatasetSummary("superbowl", "messages", n), origins=[f"r:{i}" for i in range(n)])


def render_ollama(template: str, prompt: str, system: str = "") -> str:
    """The part of an Ollama TEMPLATE before ``{{ .Response }}``, for one user turn: what the model is fed."""
    head = template.split("{{ .Response }}")[0]
    values = {"System": system, "Prompt": prompt}

    def if_block(match: re.Match[str]) -> str:
        return match.group(2) if values.get(match.group(1)) else ""

    head = re.sub(r"\{\{ if \.(\w+) \}\}(.*?)\{\{ end \}\}", if_block, head, flags=re.S)
    return re.sub(r"\{\{ \.(\w+) \}\}", lambda m: values[m.group(1)], head)


def modelfile_template(text: str) -> str:
    match = re.search(r'TEMPLATE """(.*?)"""', text, flags=re.S)
    assert match, text
    return match.group(1)


def test_tiny_model_exports_gguf_ollama_and_merged_pushes(
    tiny_model: Path, superbowl_rows: list[dict], tmp_path: Path, loopback_hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_loopback_test_token")
    config = TrainConfig.from_dict(
        {
            "model": str(tiny_model),
            "dataset": "rows.jsonl",
            "lora": {"r": 8, "gradient_checkpointing": "false"},
            "train": {"max_steps": 2, "warmup_steps": 0, "batch_size": 4, "grad_accum": 1, "max_seq_length": 256},
            # The tiny model's tokenizer is our own, unknown to llama.cpp: say which pre-tokenizer to record.
            "save": {"gguf": ["q4_k_m", "f16"], "ollama": True, "gguf_pretok": "default"},
            "hub": {"repo_id": "me/tiny", "push": ["adapter", "merged_16bit", "gguf"]},
        }
    )
    log = EventLog("export")
    hooks = LogHooks(log)

    run = run_model_phases(config, conversations(superbowl_rows, 8), tmp_path, hooks)
    artifacts = run.result.artifacts

    assert {"adapter", "merged_16bit", "gguf_q4_k_m", "gguf_f16", "ollama_modelfile"} <= set(artifacts)
    f16 = read_gguf(artifacts["gguf_f16"].local_path(tmp_path))
    q4 = read_gguf(artifacts["gguf_q4_k_m"].local_path(tmp_path))
    tokenizer = run.shared["tokenizer"]
    for summary in (f16, q4):
        assert summary.architecture == "llama"
        assert summary.tensors == f16.tensors > 0
        assert summary.chat_template == tokenizer.chat_template
        assert summary.eos_token_id == tokenizer.eos_token_id
    assert "F16" in f16.tensor_types
    assert f16.tensor_types.isdisjoint({"Q4_K", "Q5_K", "Q6_K"})
    assert q4.tensor_types & {"Q4_K", "Q5_K", "Q6_K", "Q8_0", "Q5_0", "Q4_0"}, q4.tensor_types
    assert q4.bytes < f16.bytes
    assert run.result.metrics["export_gguf_q4_k_m_bytes"] == q4.bytes
    assert not (tmp_path / ".export").exists()

    # The Modelfile points at the first type asked for and feeds the model what training fed it.
    modelfile = artifacts["ollama_modelfile"].local_path(tmp_path).read_text()
    assert modelfile.startswith(f"FROM ./{q4.path.name}\n")
    question = "Who won Super Bowl LIX?"
    trained_prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )
    assert render_ollama(modelfile_template(modelfile), question) == trained_prompt
    assert f'PARAMETER stop "{tokenizer.eos_token}"' in modelfile

    # Merged pushes reach the Hub, each in its own repository; the adapter keeps repo_id.
    assert loopback_hub.unexpected == []
    assert "adapter_model.safetensors" in loopback_hub.files["me/tiny"]
    merged = loopback_hub.files["me/tiny-merged-16bit"]
    assert {"config.json", "tokenizer_config.json"} <= set(merged)
    assert any(name.endswith(".safetensors") for name in merged)
    assert "adapter_config.json" not in merged
    gguf_repo = loopback_hub.files["me/tiny-GGUF"]
    assert gguf_repo[q4.path.name] == q4.path.read_bytes()
    assert {f16.path.name, "Modelfile"} <= set(gguf_repo)
    hub_events = {e.data["name"]: e.data["url"] for e in log.read(kinds={"artifact"}) if e.data.get("kind") == "hub"}
    assert set(hub_events) == {"hub", "hub_merged_16bit", "hub_gguf"}
    assert hooks.states[-1] == "exporting"

    # llama.cpp loads the quantised file and runs it (random weights: any tokens will do).
    from llama_cpp import Llama

    llm = Llama(model_path=str(q4.path), n_ctx=128, verbose=False, seed=0)
    out = llm.create_completion("The capital of France is", max_tokens=4, temperature=0.0)
    assert out["usage"]["completion_tokens"] >= 1


def test_an_unknown_tokenizer_is_refused_with_the_setting_that_fixes_it_and_the_adapter_is_kept(
    tiny_model: Path, superbowl_rows: list[dict], tmp_path: Path
) -> None:
    config = TrainConfig.from_dict(
        {
            "model": str(tiny_model),
            "dataset": "rows.jsonl",
            "lora": {"r": 8, "gradient_checkpointing": "false"},
            "train": {"max_steps": 1, "warmup_steps": 0, "batch_size": 4, "grad_accum": 1, "max_seq_length": 256},
            "save": {"gguf": ["f16"]},
        }
    )
    log = EventLog("export-refused")

    run = run_model_phases(config, conversations(superbowl_rows, 4), tmp_path, LogHooks(log))

    assert "adapter" in run.result.artifacts and "gguf_f16" not in run.result.artifacts
    error = str(run.result.metrics["export_error"])
    assert "llama.cpp does not recognise this model's tokenizer" in error and "save.gguf_pretok" in error
    warnings = [e.data["message"] for e in log.read(kinds={"log"}) if e.data.get("level") == "warning"]
    assert any(m.startswith("Export failed (the adapter is saved)") for m in warnings)
    assert not list((tmp_path / "gguf").glob("*.gguf")) and not (tmp_path / ".export").exists()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_smollm2_gguf_loads_back_and_answers(tmp_path: Path, superbowl_rows: list[dict]) -> None:
    from llama_cpp import Llama

    from unsloth_nb.models import smollm2_path

    config = TrainConfig.from_dict(
        {
            "model": str(smollm2_path()),
            "dataset": "rows.jsonl",
            "lora": {"r": 8, "gradient_checkpointing": "false"},
            "train": {"max_steps": 2, "warmup_steps": 0, "batch_size": 2, "grad_accum": 1, "max_seq_length": 256},
            "save": {"gguf": ["f16", "q8_0", "q4_k_m"], "ollama": True},
        }
    )

    run = run_model_phases(config, conversations(superbowl_rows, 4), tmp_path, LogHooks(EventLog("smollm2-export")))
    artifacts = run.result.artifacts

    tokenizer = run.shared["tokenizer"]
    sizes = {}
    for gguf_type in ("f16", "q8_0", "q4_k_m"):
        summary = read_gguf(artifacts[f"gguf_{gguf_type}"].local_path(tmp_path))
        assert summary.architecture == "llama" and summary.tensors > 200  # 30 layers x 9 tensors + embeddings
        assert summary.chat_template == tokenizer.chat_template
        sizes[gguf_type] = summary.bytes
    assert sizes["q4_k_m"] < sizes["q8_0"] < sizes["f16"]
    modelfile = artifacts["ollama_modelfile"].local_path(tmp_path).read_text()
    assert 'PARAMETER stop "<|im_end|>"' in modelfile and "<|im_start|>assistant" in modelfile

    answers = {}
    for gguf_type in ("f16", "q8_0", "q4_k_m"):
        llm = Llama(model_path=str(artifacts[f"gguf_{gguf_type}"].local_path(tmp_path)), n_ctx=512, verbose=False, seed=0)
        reply = llm.create_chat_completion(
            [{"role": "user", "content": "What is the capital of France?"}], max_tokens=24, temperature=0.0
        )
        answers[gguf_type] = reply["choices"][0]["message"]["content"]
    print(f"SmolLM2 GGUF answers: {answers}; sizes: {sizes}; timings: {run.result.metrics}")
    assert "Paris" in answers["f16"]
    # A 135M model is fragile under quantisation: llama.cpp's own q8_0 and q4_k_m (and the converter's q8_0)
    # of this model turn its greedy answer to French phrases. They must still load and speak.
    assert len(answers["q8_0"].split()) >= 3 and len(answers["q4_k_m"].split()) >= 3


def test_exports_made_on_a_pod_come_back_as_named_artifacts(
    runpod_emulator: RunPodEmulator, tiny_model: Path, superbowl_rows: list[dict], tmp_path: Path
) -> None:
    import json

    import unsloth_nb
    from unsloth_nb.export.tools import LLAMA_CPP_DIR_ENV, converter_dir

    # The pod takes this machine's cached converter, as an image that ships llama.cpp would: without it, every
    # emulated pod (a fresh HOME) would download and prepare llama-cpp-python's sdist from PyPI again, off loopback.
    runpod_emulator.pod_env[LLAMA_CPP_DIR_ENV] = str(converter_dir())
    dataset = tmp_path / "qa.jsonl"
    dataset.write_text(
        "".join(json.dumps({"question": r["prompt"], "answer": r["completion"][:80]}) + "\n" for r in superbowl_rows[:8])
    )
    job = unsloth_nb.train(
        model=str(tiny_model),
        dataset=str(dataset),
        placement="runpod",
        train={"max_steps": 2, "batch_size": 2, "grad_accum": 1, "max_seq_length": 256, "warmup_steps": 0},
        lora={"r": 8, "alpha": 8},
        save={"gguf": ["q4_k_m"], "ollama": True, "gguf_pretok": "default"},
    )
    job.wait(timeout=400)

    assert job.state == "succeeded", job.error
    states = [e["state"] for e in job.events() if e.kind == "status"]
    assert states.index("exporting") < states.index("downloading")
    q4 = Path(job.record.artifacts["gguf_q4_k_m"])
    assert q4.is_file() and q4.is_relative_to(job.folder.path)
    assert read_gguf(q4).tensors > 0
    modelfile = Path(job.record.artifacts["ollama_modelfile"])
    assert modelfile.read_text().startswith(f"FROM ./{q4.name}\n")
    assert "gguf_f16" not in job.record.artifacts  # the quantiser's f16 input stays on the pod
