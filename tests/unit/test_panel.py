"""TrainingPanel used the way its buttons use it: values, preview, plan, start, stop.

Widgets run without a front end (the comm package's default comm sends nothing);
the panel's methods are exactly what its buttons call.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
from fixtures import ALPACA_SEED, SUPERBOWL_TRAIN, SUPERBOWL_VALID
from job_waiting import wait_for_state

from unsloth_nb.demo import demo_dataset_path
from unsloth_nb.jobrun.job import Job
from unsloth_nb.jobrun.store import jobs_root
from unsloth_nb.testing.runpod_emulator import RunPodEmulator
from unsloth_nb.ui.panel import UPLOAD_FOLDER, TrainingPanel
from unsloth_nb.ui.view import JobView

DEMO = demo_dataset_path()


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
    assert "Fix the values outlined in red" in panel.message_html.value
    for path in ("model.name", "train.lr", "lora.r", "train.batch_size"):  # outlined, all at once
        assert panel.fields[path].widget.layout.border == "2px solid #cf222e"
    assert panel.fields["train.epochs"].widget.layout.border is None
    assert "fill in “Model”" in panel.message_html.value and "--model" not in panel.message_html.value
    assert panel.start_button.disabled and "outlined in red" in panel.start_button.tooltip

    panel.fields["model.name"].widget.value = "HuggingFaceTB/SmolLM2-135M-Instruct"
    panel.fields["train.lr"].widget.value = "1e-4"
    panel.fields["lora.r"].widget.value = "8"
    panel.fields["train.batch_size"].widget.value = "4"
    config = panel.config()
    assert config is not None and config.train.lr == pytest.approx(1e-4) and config.lora.r == 8
    assert panel.errors == {} and panel.fields["train.lr"].error.value == ""
    assert panel.fields["train.lr"].widget.layout.border is None
    assert not panel.start_button.disabled


def test_the_generate_settings_are_advanced_fields_and_none_survives_the_form(tmp_path: Path) -> None:
    imported = {"generate": {"max_new_tokens": 64, "temperature": None, "min_p": None}}  # a greedy notebook's import
    panel = TrainingPanel(dataset=str(DEMO), config=imported, base_dir=tmp_path)
    advanced = {row for box in panel.widget.children if hasattr(box, "titles") for row in box.children[0].children}
    fields = [panel.fields[p] for p in ("generate.max_new_tokens", "generate.temperature", "generate.min_p")]
    assert all(item.row in advanced for item in fields)
    assert [item.row.children[0].value for item in fields] == ["Answer length (tokens)", "Answer temperature", "Answer min_p"]
    assert [item.widget.value for item in fields] == ["64", "none", "none"]  # not emptied back to 1.5 and 0.1
    panel.fields["model.name"].widget.value = "HuggingFaceTB/SmolLM2-135M-Instruct"

    config = panel.config()
    assert config is not None
    assert (config.generate.max_new_tokens, config.generate.temperature, config.generate.min_p) == (64, None, None)

    panel.fields["generate.temperature"].widget.value = "0.7"
    panel.fields["generate.min_p"].widget.value = ""  # empty: the default
    assert panel.config().generate == dataclasses.replace(config.generate, temperature=0.7, min_p=0.1)

    panel.fields["generate.temperature"].widget.value = "hot"
    assert panel.config() is None
    assert "expected a number" in panel.fields["generate.temperature"].error.value
    assert "- Answer temperature: expected a number" in panel.message_html.value  # the form's own label


def test_preview_shows_format_rows_and_validation(tmp_path: Path) -> None:
    panel = TrainingPanel(dataset=str(SUPERBOWL_TRAIN), base_dir=tmp_path)

    text = panel.preview_html.value
    assert "prompt/completion" in text and "40 rows" in text
    assert "every row can be trained on" in text
    assert text.count("<tr>") == 5 and "train.jsonl:1" in text and "Super Bowl LIX" in text

    panel.fields["dataset.path"].widget.value = str(ALPACA_SEED)
    assert "Alpaca" in panel.preview_html.value and "seed_tasks.jsonl:1" in panel.preview_html.value

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Who won?", "answer": "The Eagles"}\n{"question": "Score?"}\n')
    panel.fields["dataset.path"].widget.value = str(bad)
    assert "bad.jsonl:2" in panel.preview_html.value
    assert "1 row(s) cannot be used" in panel.fields["dataset.path"].error.value

    panel.fields["dataset.path"].widget.value = str(tmp_path / "missing.jsonl")
    assert "not found" in panel.fields["dataset.path"].error.value


def test_an_upload_is_saved_in_the_working_folder_and_becomes_the_dataset(tmp_path: Path) -> None:
    panel = TrainingPanel(base_dir=tmp_path)
    content = SUPERBOWL_VALID.read_bytes()

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
    assert "8 rows" in panel.preview_html.value


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
    assert null_tooltips(panel.widget) == []  # the job's view included
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


# ---------------------------------------------------------------------- form state
MODEL_2K = Path(__file__).resolve().parents[1] / "data" / "bad" / "short_context_model"  # a config.json: enough to plan
BAD_ROWS = Path(__file__).resolve().parents[1] / "data" / "bad" / "malformed_json.jsonl"  # 3 good rows, 1 broken


def test_bad_rows_keep_start_disabled_until_skipping_is_ticked(tmp_path: Path) -> None:
    panel = TrainingPanel(model=str(MODEL_2K), dataset=str(BAD_ROWS), base_dir=tmp_path, placement="local")

    assert panel.start_button.disabled and "Skip invalid" in panel.start_button.tooltip
    text = panel.preview_html.value
    assert "1 row(s) cannot be used" in text and "tick “Skip invalid”" in text
    assert "skipped" not in text  # nothing is skipped while the box is not ticked
    assert panel.last_plan is None and panel.plan_html.value == ""

    panel.fields["dataset.skip_invalid"].widget.value = True

    assert not panel.start_button.disabled
    assert "1 skipped" in panel.preview_html.value and "will be skipped" in panel.preview_html.value
    assert panel.last_plan is not None


def test_a_stale_plan_is_cleared_when_the_data_changes(tmp_path: Path) -> None:
    panel = TrainingPanel(model=str(MODEL_2K), dataset=str(DEMO), base_dir=tmp_path, placement="local")
    assert panel.last_plan is not None and "Steps" in panel.plan_html.value

    panel.fields["dataset.path"].widget.value = str(BAD_ROWS)

    assert panel.last_plan is None and panel.plan_html.value == ""
    assert panel.start_button.disabled


def test_uploading_a_new_file_under_the_same_name_reads_it_again(tmp_path: Path) -> None:
    panel = TrainingPanel(model=str(MODEL_2K), base_dir=tmp_path, placement="local")
    panel.save_upload("qa.jsonl", DEMO.read_bytes())
    assert "every row can be trained on" in panel.preview_html.value and panel.last_plan is not None

    panel.save_upload("qa.jsonl", BAD_ROWS.read_bytes())

    assert "1 row(s) cannot be used" in panel.preview_html.value
    assert panel.last_plan is None and panel.start_button.disabled


def test_start_reports_every_problem_at_once_in_the_forms_own_words(tmp_path: Path) -> None:
    panel = TrainingPanel(model=str(tmp_path / "no-model"), dataset=str(BAD_ROWS), base_dir=tmp_path, placement="local")
    panel.fields["lora.r"].widget.value = "0"
    panel.fields["model.chat_template"].widget.value = "llama3.1"

    assert panel.start() is None

    message = panel.message_html.value
    assert "4 problems; nothing was started" in message
    assert {"lora.r", "model.name", "model.chat_template"} <= set(panel.errors)
    assert "LoRA rank: must be at least 1" in message and "did you mean &#x27;llama-3.1&#x27;?" in message
    assert "tick “Skip invalid” under Advanced settings" in message
    assert "--" not in message.replace("<!--", "")  # no command-line flags in the form
    assert job_folders() == []


def test_defaults_the_user_never_set_are_adjusted_not_refused(tmp_path: Path) -> None:
    panel = TrainingPanel(model=str(MODEL_2K), dataset=str(DEMO), base_dir=tmp_path, placement="local")
    panel.fields["train.max_steps"].widget.value = "3"  # the default warm-up is 5 steps

    config = panel.config()
    assert config is not None and config.train.warmup_steps == 0 and panel.errors == {}

    panel.fields["train.warmup_steps"].widget.value = "4"  # now it is the user's own contradiction
    assert panel.config() is None and "exceed max_steps=3" in panel.errors["train.warmup_steps"]


def test_no_widget_has_a_null_tooltip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ipywidgets writes a None tooltip into the page as title="null" (hover the Upload button)."""
    monkeypatch.setenv("RUNPOD_API_KEY", "rp_not_a_real_key_for_tests")
    panel = TrainingPanel(
        model="unsloth/Llama-3.3-70B-Instruct", dataset=str(DEMO), base_dir=tmp_path, placement="runpod",
        runpod__confirm_above_usd=0,
    )  # fmt: skip
    assert panel.start() is None and panel.confirm_box.children  # the Rent / Cancel box is up too

    assert null_tooltips(panel.widget, panel.confirm_box) == []
    assert panel.upload.tooltip.startswith("Upload a dataset file")


def null_tooltips(*roots: object) -> list[str]:
    """Widgets under ``roots`` whose tooltip is None (shown as title="null" in the page)."""
    import ipywidgets

    todo, null = list(roots), []
    while todo:
        widget = todo.pop()
        if not isinstance(widget, ipywidgets.Widget):
            continue
        if widget.has_trait("tooltip") and widget.tooltip is None:
            null.append(f"{type(widget).__name__}({getattr(widget, 'description', '')!r})")
        todo.extend(getattr(widget, "children", ()) or ())
    return null


def test_the_judges_cost_is_asked_before_start_not_after_training(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from unsloth_nb.testing import fake_llm as behaviours
    from unsloth_nb.testing.fake_openai import FakeOpenAI

    monkeypatch.setenv("OPENAI_API_KEY", FakeOpenAI.api_key)
    with FakeOpenAI(behaviours.picks_first()) as fake:
        panel = TrainingPanel(
            model=str(tiny_model),
            dataset=str(DEMO),
            base_dir=tmp_path,
            placement="local",
            train__max_steps=2,
            train__warmup_steps=1,
            train__max_seq_length=512,
        )
        panel.fields["judge.enabled"].widget.value = True
        panel.fields["judge.base_url"].widget.value = fake.base_url
        panel.fields["judge.eval_path"].widget.value = str(DEMO.with_name("superbowl_eval.jsonl"))
        panel.fields["judge.max_new_tokens"].widget.value = "4"
        panel.fields["judge.confirm_above_usd"].widget.value = "0"  # always ask, whatever the estimate

        assert panel.start() is None  # asked first: nothing started
        question = panel.confirm_box.children[0].value
        assert "After training, judge " in question and " requests with " in question and "(estimated at most $" in question
        buttons = [w.description for w in panel.confirm_box.children[1:]]
        assert buttons == ["Start", "Cancel"] and "Rent" not in question
        assert job_folders() == []
        panel.confirm_box.children[-1].click()  # Cancel
        assert panel.confirm_box.children == () and "not confirmed" in panel.message_html.value
        assert job_folders() == [] and fake.calls == 0

        assert panel.start() is None
        panel.confirm_box.children[1].click()  # Start: the estimate was accepted before training
        job = panel.job
        assert job is not None
        job.wait(timeout=600)
        assert job.state == "succeeded", job.error
        stages = [e.data.get("stage") for e in job.events(kinds={"evaluation"})]
        assert "done" in stages and "failed" not in stages  # not stopped by the judge's question after training
        assert fake.calls > 0 and job.evaluation is not None


def test_a_rental_and_a_judge_are_asked_about_in_one_question(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "rp_not_a_real_key_for_tests")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-a-real-key-for-tests")
    panel = TrainingPanel(
        model="unsloth/Llama-3.3-70B-Instruct",
        dataset=str(DEMO),
        base_dir=tmp_path,
        placement="runpod",
        runpod__confirm_above_usd=0,
        judge__eval_path=str(DEMO.with_name("superbowl_eval.jsonl")),
        judge__confirm_above_usd=0,
    )

    assert panel.start() is None

    question = panel.confirm_box.children[0].value
    assert "Rent a RunPod GPU for this job (estimated $" in question and "After training, judge " in question
    assert [w.description for w in panel.confirm_box.children[1:]] == ["Rent and start", "Cancel"]
    assert job_folders() == []
