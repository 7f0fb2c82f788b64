"""TrainingPanel used the way its buttons use it: values, preview, plan, start, stop.

Widgets run without a front end (the comm package's default comm sends nothing);
the panel's methods are exactly what its buttons call.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from job_waiting import wait_for_state

from unsloth_nb.demo import demo_dataset_path
from unsloth_nb.jobs.job import Job
from unsloth_nb.jobs.store import jobs_root
from unsloth_nb.testing.runpod_emulator import RunPodEmulator
from unsloth_nb.ui.panel import UPLOAD_FOLDER, TrainingPanel
from unsloth_nb.ui.view import JobView

DEMO = demo_dataset_path()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from unsloth_nb.testing.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.getbasetemp() / "tiny-model")


def tiny_panel(model: Path, tmp_path: Path, steps: int = 3) -> TrainingPanel:
    return TrainingPanel(
        model=str(model),
        dataset=str(DEMO),
        base_dir=tmp_path,
        placement="local",
        train__max_steps=steps,
        train__warmup_steps=1,
        train__max_seq_length=512,
    )


def job_folders() -> list[Path]:
    root = jobs_root()
    return sorted(root.iterdir()) if root.is_dir() else []


def widget_states(root: object) -> list[dict]:
    """The synced state of ``root`` and every widget under it (what a notebook would save)."""
    import ipywidgets

    seen: dict[str, dict] = {}
    todo = [root]
    while todo:
        widget = todo.pop()
        if not isinstance(widget, ipywidgets.Widget) or widget.model_id in seen:
            continue
        seen[widget.model_id] = widget.get_state()
        todo.extend(getattr(widget, "children", ()))
        todo.extend(value for value in widget.get_state().values() if isinstance(value, ipywidgets.Widget))
    return list(seen.values())


def test_field_errors_are_shown_at_their_fields(tmp_path: Path) -> None:
    panel = TrainingPanel(dataset=str(DEMO), base_dir=tmp_path)
    panel.fields["train.lr"].widget.value = "fast"
    panel.fields["lora.r"].widget.value = "0"
    panel.fields["train.batch_size"].widget.value = "2.5"

    assert panel.config() is None

    assert panel.errors == {
        "model.name": panel.errors["model.name"],
        "train.lr": "expected a number, got 'fast'",
        "lora.r": "must be at least 1, got 0",
        "train.batch_size": "expected a whole number, got '2.5'",
    }
    assert "no model given" in panel.errors["model.name"]
    assert "expected a number" in panel.fields["train.lr"].error.value
    assert panel.fields["train.epochs"].error.value == ""
    assert "Fix the values marked in red" in panel.message_html.value

    panel.fields["model.name"].widget.value = "HuggingFaceTB/SmolLM2-135M-Instruct"
    panel.fields["train.lr"].widget.value = "1e-4"
    panel.fields["lora.r"].widget.value = "8"
    panel.fields["train.batch_size"].widget.value = "4"
    config = panel.config()
    assert config is not None and config.train.lr == pytest.approx(1e-4) and config.lora.r == 8
    assert panel.errors == {} and panel.fields["train.lr"].error.value == ""


def test_preview_shows_format_rows_and_validation(shared_data: Path, tmp_path: Path) -> None:
    panel = TrainingPanel(dataset=str(shared_data / "superbowl-qa" / "train.jsonl"), base_dir=tmp_path)

    text = panel.preview_html.value
    assert "prompt/completion" in text and "1,800 rows" in text
    assert "every row can be trained on" in text
    assert text.count("<tr>") == 5 and "train.jsonl:1" in text and "Super Bowl LIX" in text

    panel.fields["dataset.path"].widget.value = str(shared_data / "alpaca-seed" / "seed_tasks.jsonl")
    assert "Alpaca" in panel.preview_html.value and "seed_tasks.jsonl:1" in panel.preview_html.value

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Who won?", "answer": "The Eagles"}\n{"question": "Score?"}\n')
    panel.fields["dataset.path"].widget.value = str(bad)
    assert "bad.jsonl:2" in panel.preview_html.value
    assert "1 row(s) cannot be used" in panel.fields["dataset.path"].error.value

    panel.fields["dataset.path"].widget.value = str(tmp_path / "missing.jsonl")
    assert "not found" in panel.fields["dataset.path"].error.value


def test_an_upload_is_saved_in_the_working_folder_and_becomes_the_dataset(shared_data: Path, tmp_path: Path) -> None:
    panel = TrainingPanel(base_dir=tmp_path)
    content = (shared_data / "superbowl-qa" / "valid.jsonl").read_bytes()

    panel.upload.value = (
        {
            "name": "valid.jsonl",
            "type": "application/json",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": dt.datetime.now(tz=dt.timezone.utc),
        },
    )

    saved = tmp_path / UPLOAD_FOLDER / "valid.jsonl"
    assert saved.read_bytes() == content
    assert panel.fields["dataset.path"].widget.value == f"{UPLOAD_FOLDER}/valid.jsonl"
    assert panel.upload.value == ()  # the bytes do not stay in the notebook's widget state
    assert "144 rows" in panel.preview_html.value


def test_the_plan_is_shown_before_start(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    panel = tiny_panel(tiny_model, tmp_path)

    plan = panel.plan()

    assert plan is not None and plan.placement == "local"
    assert "this machine" in panel.plan_html.value and "of RAM" in panel.plan_html.value
    assert "Steps" in panel.plan_html.value

    panel.fields["model.name"].widget.value = "unsloth/Llama-3.3-70B-Instruct"
    panel.placement.value = "runpod"
    assert panel.last_plan is not None and panel.last_plan.placement == "runpod"
    html = panel.plan_html.value
    assert "RunPod" in html and "/h" in html and "Estimated cost" in html and "GPU memory" in html


def test_start_runs_a_tiny_job_and_shows_its_view(tiny_model: Path, tmp_path: Path) -> None:
    panel = tiny_panel(tiny_model, tmp_path)

    job = panel.start()

    assert isinstance(job, Job) and isinstance(panel.view, JobView)
    assert panel.job_box.children == (panel.view.widget,)
    assert panel.start_button.disabled and not panel.stop_button.disabled
    job.wait(timeout=300)
    assert job.state == "succeeded"
    assert job.config.train.max_steps == 3 and job.config.model.name == str(tiny_model)
    assert not panel.start_button.disabled and panel.stop_button.disabled


def test_stop_cancels_a_longer_job(tiny_model: Path, tmp_path: Path) -> None:
    panel = tiny_panel(tiny_model, tmp_path, steps=100_000)
    job = panel.start()
    assert job is not None
    wait_for_state(job, "training")

    panel.stop_button.click()
    job.wait(timeout=300)

    assert job.state == "cancelled"
    assert panel.stop_button.disabled and not panel.start_button.disabled


def test_a_rental_waits_for_confirmation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "rp_not_a_real_key_for_tests")
    panel = TrainingPanel(
        model="unsloth/Llama-3.3-70B-Instruct",
        dataset=str(DEMO),
        base_dir=tmp_path,
        placement="runpod",
        runpod__confirm_above_usd=0,  # always ask, whatever the estimate
    )

    assert panel.start() is None

    buttons = [w.description for w in panel.confirm_box.children if hasattr(w, "description")]
    assert "Rent and start" in buttons and "Cancel" in buttons
    assert "Rent a RunPod GPU for this job (estimated $" in panel.confirm_box.children[0].value
    assert job_folders() == []
    panel.confirm_box.children[-1].click()  # Cancel
    assert panel.confirm_box.children == () and "not confirmed" in panel.message_html.value
    assert job_folders() == []


def test_a_cheap_rental_starts_without_the_rent_box(tiny_model: Path, tmp_path: Path, runpod_emulator: RunPodEmulator) -> None:
    panel = tiny_panel(tiny_model, tmp_path, steps=2)
    panel.placement.value = "runpod"  # a few cents: under the default runpod.confirm_above_usd ($1)

    job = panel.start()

    assert job is not None and panel.confirm_box.children == ()
    message = panel.message_html.value
    assert f"Started job {job.id}." in message and "Renting without asking: estimated $0." in message
    job.wait(timeout=240)
    assert job.state == "succeeded" and job.placement == "runpod"
    assert len(runpod_emulator.ledger.pod_ids()) == 1 and runpod_emulator.ledger.running_pods() == []


def test_a_missing_key_is_named_and_nothing_starts(tiny_model: Path, tmp_path: Path) -> None:
    panel = tiny_panel(tiny_model, tmp_path)
    panel.fields["hub.repo_id"].widget.value = "me/tiny-lora"

    assert panel.start() is None

    message = panel.message_html.value
    assert "HF_TOKEN is not set" in message and "ask_secrets()" in message
    assert job_folders() == []


def test_no_widget_holds_a_secret(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {"HF_TOKEN": "hf_panelTestSecretValue123", "RUNPOD_API_KEY": "rp_panelTestSecretValue456"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    panel = tiny_panel(tiny_model, tmp_path)
    panel.fields["hub.repo_id"].widget.value = "me/tiny-lora"
    panel.fields["model.name"].widget.value = "unsloth/Llama-3.3-70B-Instruct"
    panel.placement.value = "runpod"
    panel.fields["runpod.confirm_above_usd"].widget.value = "0"
    panel.plan()
    assert panel.start() is None  # waits for the rental to be confirmed
    assert panel.confirm_box.children, panel.message_html.value
    assert panel.ask_secrets() == []  # both keys come from the environment

    states = widget_states(panel.widget) + widget_states(panel.confirm_box)
    assert len(states) > 50
    dumped = json.dumps(states, default=str)
    for value in secrets.values():
        assert value not in dumped
    assert "Password" not in {state.get("_model_name") for state in states}
