"""The training engine end to end on the tiny model: Unsloth's real API on its CPU backend.

Each run loads a real (tiny) model folder, trains with TRL's SFTTrainer on real rows from
tests/data, and writes real files; the hooks are the same EventLog-backed ones the worker uses.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fixtures import WIKISQL_TRAIN, read_jsonl

from unsloth_nb.config import TrainConfig
from unsloth_nb.data import DatasetSummary, PreparedDataset
from unsloth_nb.engine import LogHooks, generate, load_for_inference
from unsloth_nb.errors import ConfigError, DatasetError, MissingSecretError
from unsloth_nb.jobrun.events import EventLog
from unsloth_nb.phases.base import PhaseContext
from unsloth_nb.phases.runner import run_model_phases

pytestmark = pytest.mark.timeout(600)


def step(ran: PhaseContext) -> int:
    """The optimizer steps a run reported in its result."""
    return int(ran.result.metrics["global_step"])


def path(ran: PhaseContext, name: str) -> Path | None:
    """Where a named artifact of a run is on this machine."""
    artifact = ran.result.artifacts.get(name)
    return artifact.local_path(ran.output_dir) if artifact is not None else None


def messages_dataset(rows: list[dict], answer_chars: int = 160) -> PreparedDataset:
    """Super Bowl Q&A as conversations, answers cut short so rows fit max_seq_length."""
    train = [
        {
            "messages": [
                {"role": "user", "content": row["prompt"]},
                {"role": "assistant", "content": row["completion"][:answer_chars]},
            ]
        }
        for row in rows
    ]
    summary = DatasetSummary(source="superbowl-qa/train.jsonl", format="prompt_completion", rows=len(train))
    return PreparedDataset(train, None, summary, origins=[f"train.jsonl:{i + 1}" for i in range(len(train))])


def text_dataset(limit: int = 24, eval_rows: int = 0) -> PreparedDataset:
    """WikiSQL rows: plain text, no turns."""
    rows = [{"text": row["text"]} for row in read_jsonl(WIKISQL_TRAIN, limit=limit + eval_rows)]
    train, evaluation = rows[:limit], rows[limit:] or None
    summary = DatasetSummary(source="wikisql/train.jsonl", format="text", rows=len(train), eval_rows=eval_rows)
    return PreparedDataset(
        train,
        evaluation,
        summary,
        origins=[f"train.jsonl:{i + 1}" for i in range(len(train))],
        eval_origins=[f"train.jsonl:{limit + i + 1}" for i in range(eval_rows)],
    )


def tiny_config(model: Path, **train: Any) -> TrainConfig:
    settings = {
        "max_steps": 6,
        "batch_size": 4,
        "grad_accum": 1,
        "lr": 5e-3,
        "warmup_steps": 1,
        "max_seq_length": 256,
        **train,
    }
    return TrainConfig.from_dict(
        {
            "model": {"name": str(model)},
            "dataset": "rows.jsonl",
            "lora": {"r": 8, "gradient_checkpointing": "false"},
            "train": settings,
        }
    )


def kinds(log: EventLog, kind: str) -> list[dict]:
    return [event.data for event in log.read(kinds={kind})]


@pytest.fixture(scope="module")
def trained(
    tiny_model: Path, superbowl_rows: list[dict], tmp_path_factory: pytest.TempPathFactory
) -> tuple[PhaseContext, EventLog, LogHooks]:
    """One 6-step run on conversations that also saves the merged 16-bit model."""
    config = tiny_config(tiny_model).merged({"save.merged_16bit": True})
    log = EventLog("engine-test")
    hooks = LogHooks(log)
    result = run_model_phases(config, messages_dataset(superbowl_rows), tmp_path_factory.mktemp("run"), hooks)
    return result, log, hooks


def test_a_run_reports_its_phases_and_events_in_order(trained: tuple[PhaseContext, EventLog, LogHooks]) -> None:
    result, log, hooks = trained

    assert hooks.states == ["starting", "training", "saving"]
    order = [event.kind for event in log.read()]
    assert order.index("summary") < order.index("progress") < order.index("checkpoint") < order.index("artifact")

    summary = kinds(log, "summary")[0]
    assert summary["device"] == "cpu"
    assert summary["params"] > 100_000
    # the end of the run, for the view's summary (issue 16): peak RAM on a CPU, as Unsloth prints GPU memory
    (run,) = [s for s in kinds(log, "summary") if "peak_memory_gb" in s]
    assert run["memory"] == "RAM" and 0.05 < run["peak_memory_gb"] < 512
    assert run["global_step"] == step(result) and run["train_runtime"] > 0 and run["num_tokens"] > 0
    assert all(m["memory_gb"] > 0 for m in kinds(log, "metrics") if "loss" in m)
    messages = " ".join(m["message"] for m in kinds(log, "log"))
    assert "Counted with the tokenizer: 40 rows" in messages
    assert "trainable of" in messages

    metrics = kinds(log, "metrics")
    steps = [m["step"] for m in metrics]
    assert steps == sorted(set(steps)) == [1, 2, 3, 4, 5, 6]
    assert all(m["loss"] > 0 and "learning_rate" in m and "grad_norm" in m for m in metrics)
    assert any(m.get("tokens_per_second", 0) > 0 for m in metrics)

    progress = kinds(log, "progress")
    assert [p["step"] for p in progress] == [1, 2, 3, 4, 5, 6]
    assert {p["total_steps"] for p in progress} == {6}
    assert progress[-1]["eta_seconds"] == 0

    assert step(result) == result.result.metrics["total_steps"] == 6
    assert result.result.metrics["final_loss"] == metrics[-1]["loss"]
    assert not result.result.stopped
    assert "Training on responses only" in " ".join(m["message"] for m in kinds(log, "log"))


def test_the_last_step_leaves_a_checkpoint_and_the_adapter_is_saved(trained: tuple[PhaseContext, EventLog, LogHooks]) -> None:
    result, log, _ = trained

    assert path(result, "checkpoint") is not None and path(result, "checkpoint").name == "checkpoint-6"
    assert kinds(log, "checkpoint") == [{"step": 6, "path": str(path(result, "checkpoint"))}]

    assert path(result, "adapter") is not None
    assert (path(result, "adapter") / "adapter_config.json").is_file()
    assert (path(result, "adapter") / "adapter_model.safetensors").is_file()
    assert (path(result, "adapter") / "tokenizer_config.json").is_file()
    artifacts = {a["kind"]: a for a in kinds(log, "artifact")}
    assert artifacts["adapter"]["path"] == str(path(result, "adapter"))
    assert artifacts["adapter"]["bytes"] > 0


def test_merged_16bit_is_a_plain_model_folder(trained: tuple[PhaseContext, EventLog, LogHooks]) -> None:
    result, log, _ = trained

    assert path(result, "merged_16bit") is not None
    assert (path(result, "merged_16bit") / "config.json").is_file()
    assert list(path(result, "merged_16bit").glob("*.safetensors"))
    assert not (path(result, "merged_16bit") / "adapter_config.json").exists()
    assert {a["kind"] for a in kinds(log, "artifact")} == {"adapter", "merged_16bit"}


def test_the_saved_adapter_reloads_and_answers(trained: tuple[PhaseContext, EventLog, LogHooks]) -> None:
    result, _, _ = trained
    assert path(result, "adapter") is not None

    model, tokenizer = load_for_inference(path(result, "adapter"), max_seq_length=256)
    answer = generate(model, tokenizer, "Who won Super Bowl LIX?", max_new_tokens=8)

    assert isinstance(answer, str)
    assert "<|im_start|>" not in answer and "Who won Super Bowl LIX?" not in answer


def test_stop_leaves_a_checkpoint_and_resume_continues_from_it(
    tiny_model: Path, superbowl_rows: list[dict], tmp_path: Path
) -> None:
    config = tiny_config(tiny_model, max_steps=10)
    dataset = messages_dataset(superbowl_rows)

    # The user presses Stop once step 3 is reported; training runs in a worker thread, as in the kernel.
    log = EventLog("stopped")
    hooks = LogHooks(log)
    log.subscribe(lambda event: hooks.stop() if event.kind == "progress" and event["step"] >= 3 else None)
    outcome: dict[str, PhaseContext] = {}
    worker = threading.Thread(target=lambda: outcome.update(result=run_model_phases(config, dataset, tmp_path, hooks)))
    worker.start()
    worker.join()
    stopped = outcome["result"]

    assert stopped.result.stopped
    assert 3 <= step(stopped) <= 5
    assert path(stopped, "checkpoint") == tmp_path / "checkpoints" / f"checkpoint-{step(stopped)}"
    assert path(stopped, "checkpoint").is_dir()
    assert kinds(log, "checkpoint") == [{"step": step(stopped), "path": str(path(stopped, "checkpoint"))}]
    assert path(stopped, "adapter") is not None and path(stopped, "merged_16bit") is None

    resumed_log = EventLog("resumed")
    resumed = run_model_phases(config, dataset, tmp_path, LogHooks(resumed_log), resume_from_checkpoint=True)

    steps = [m["step"] for m in kinds(resumed_log, "metrics")]
    assert steps[0] == step(stopped) + 1
    assert steps[-1] == step(resumed) == 10
    assert not resumed.result.stopped
    assert path(resumed, "checkpoint") == tmp_path / "checkpoints" / "checkpoint-10"


def test_plain_text_rows_train_and_evaluate(tiny_model: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_model, max_steps=4, eval_steps=2)
    log = EventLog("text")

    result = run_model_phases(config, text_dataset(limit=24, eval_rows=8), tmp_path, LogHooks(log))

    assert step(result) == 4
    train_steps = [m["step"] for m in kinds(log, "metrics") if "loss" in m]
    eval_steps = [m["step"] for m in kinds(log, "metrics") if "eval_loss" in m]
    assert train_steps == [1, 2, 3, 4]
    assert eval_steps == [2, 4]
    assert all(m["eval_loss"] > 0 for m in kinds(log, "metrics") if "eval_loss" in m)
    assert "Training on responses only" not in " ".join(m["message"] for m in kinds(log, "log"))


def test_a_hub_repo_without_hf_token_fails_before_loading(
    tiny_model: Path, superbowl_rows: list[dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    config = tiny_config(tiny_model).merged({"hub.repo_id": "me/tiny-lora"})
    hooks = LogHooks(EventLog("hub"))

    with pytest.raises(MissingSecretError) as caught:
        run_model_phases(config, messages_dataset(superbowl_rows), tmp_path, hooks)

    assert caught.value.variable == "HF_TOKEN"
    assert hooks.states == []


def test_an_over_long_row_fails_before_the_weights_load(tiny_model: Path, superbowl_rows: list[dict], tmp_path: Path) -> None:
    dataset = messages_dataset(superbowl_rows, answer_chars=2000)
    log = EventLog("too-long")
    hooks = LogHooks(log)

    with pytest.raises(DatasetError) as caught:
        run_model_phases(
            tiny_config(tiny_model, max_seq_length=128).merged({"dataset.long_rows": "error"}), dataset, tmp_path, hooks
        )

    assert "longer than max_seq_length=128" in str(caught.value)
    assert "train.jsonl:1:" in str(caught.value)
    assert hooks.states == ["starting"]
    assert not [s for s in kinds(log, "summary") if "model" in s]


def test_skip_invalid_drops_over_long_rows_and_says_so(tiny_model: Path, superbowl_rows: list[dict], tmp_path: Path) -> None:
    long_answers = [{**row, "completion": " ".join([row["completion"]] * 20)} for row in superbowl_rows[8:12]]
    rows = messages_dataset(superbowl_rows[:8], answer_chars=100).train + messages_dataset(long_answers, answer_chars=2000).train
    dataset = PreparedDataset(rows, None, DatasetSummary("mixed", "messages", len(rows)), origins=[f"r:{i}" for i in range(12)])
    config = tiny_config(tiny_model, max_steps=2, max_seq_length=128).merged(
        {"dataset.skip_invalid": True, "dataset.long_rows": "error"}
    )
    log = EventLog("skip")

    result = run_model_phases(config, dataset, tmp_path, LogHooks(log))

    assert step(result) == 2
    dataset_summaries = [s for s in kinds(log, "summary") if "rows" in s]
    assert dataset_summaries[-1]["rows"] == 8
    assert dataset_summaries[-1]["skipped"] == 4


def test_over_long_rows_are_truncated_as_the_dataset_check_said(
    tiny_model: Path, superbowl_rows: list[dict], tmp_path: Path
) -> None:
    long_answers = [{**row, "completion": " ".join([row["completion"]] * 20)} for row in superbowl_rows[8:12]]
    rows = messages_dataset(superbowl_rows[:8], answer_chars=100).train + messages_dataset(long_answers, answer_chars=2000).train
    dataset = PreparedDataset(rows, None, DatasetSummary("mixed", "messages", len(rows)), origins=[f"r:{i}" for i in range(12)])
    log = EventLog("truncate")

    result = run_model_phases(tiny_config(tiny_model, max_steps=2, max_seq_length=128), dataset, tmp_path, LogHooks(log))

    assert step(result) == 2
    summary = [s for s in kinds(log, "summary") if "rows" in s][-1]
    assert (summary["rows"], summary["truncated_rows"], summary["long_dropped"]) == (12, 4, 0)
    assert summary["tokens_cut"] > 0
    messages = [m["message"] for m in kinds(log, "log")]
    assert any("4 row(s) longer than max_seq_length=128 are truncated" in m for m in messages)
    # The trainer holds exactly the rows the check said it would cut, each cut at the limit.
    assert "Tokenized training rows: longest 128 tokens; 4 at max_seq_length=128." in messages


def test_prompt_masking_falls_back_to_full_text_when_the_template_has_no_markers(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    from unsloth_nb.engine.sft import CHATML_PARTS, response_parts

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    conversation = {"messages": [{"role": "user", "content": "Who won?"}, {"role": "assistant", "content": "The Eagles."}]}
    assert response_parts(tokenizer, conversation) == CHATML_PARTS

    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
    assert response_parts(tokenizer, conversation) is None


def test_an_unsloth_chat_template_by_name_trains_on_responses_only(
    tiny_model: Path, superbowl_rows: list[dict], tmp_path: Path
) -> None:
    config = tiny_config(tiny_model, max_steps=2).merged({"model.chat_template": "llama-3"})
    log = EventLog("llama-3")

    result = run_model_phases(config, messages_dataset(superbowl_rows[:8], answer_chars=80), tmp_path, LogHooks(log))

    assert step(result) == 2
    messages = " ".join(m["message"] for m in kinds(log, "log"))
    assert "Training on responses only (after '<|eot_id|><|start_header_id|>assistant<|end_header_id|>\\n\\n')" in messages
    assert "<|start_header_id|>assistant" in (path(result, "adapter") / "chat_template.jinja").read_text()


def test_an_unknown_chat_template_names_the_known_ones(tiny_model: Path, superbowl_rows: list[dict], tmp_path: Path) -> None:
    config = tiny_config(tiny_model).merged({"model.chat_template": "llama-9"})

    with pytest.raises(ConfigError) as caught:
        run_model_phases(config, messages_dataset(superbowl_rows), tmp_path, LogHooks(EventLog("unknown")))

    assert caught.value.field == "model.chat_template"
    assert "llama-3.1" in str(caught.value)
