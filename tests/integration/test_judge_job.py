"""A job with a judge: section, end to end on the tiny model, judged by the fake OpenAI server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fixtures import judge_requests

from unsloth_nb.testing import fake_llm as behaviours
from unsloth_nb.testing.fake_openai import FakeOpenAI

DEMO = Path(__file__).resolve().parents[2] / "unsloth_nb" / "demo_data" / "superbowl_qa_demo.jsonl"
EVAL = DEMO.with_name("superbowl_eval.jsonl")


@pytest.fixture(scope="module")
def demo_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from unsloth_nb.engine.model import import_unsloth
    from unsloth_nb.testing import build_tiny_model

    import_unsloth()
    rows = [json.loads(line) for line in DEMO.read_text().splitlines()[:60]]
    return build_tiny_model(
        tmp_path_factory.mktemp("models") / "tiny", vocab_texts=[r["prompt"] + "\n" + r["completion"] for r in rows]
    )


def judged_job_config(model: Path, fake: FakeOpenAI, *, train: dict[str, Any], **judge: Any) -> Any:
    """A local job on the tiny model and the demo rows, judged on the demo's eval file by ``fake``."""
    from unsloth_nb.api import as_config

    return as_config(
        {
            "model": {"name": str(model), "load_in_4bit": False},
            "dataset": str(DEMO),
            "train": {"batch_size": 4, "grad_accum": 1, "warmup_steps": 0, "max_seq_length": 512, **train},
            "placement": "local",
            "judge": {"base_url": fake.base_url, "eval_path": str(EVAL), **judge},
        }
    )


def test_a_judged_job_reports_and_a_rerun_makes_no_calls(
    demo_tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from unsloth_nb.cli import main
    from unsloth_nb.evaluate.answers import AnswerSet
    from unsloth_nb.evaluate.holdout import HeldOut
    from unsloth_nb.jobrun.controller import start_job
    from unsloth_nb.jobrun.preflight import prepare

    monkeypatch.setenv("OPENAI_API_KEY", FakeOpenAI.api_key)
    with FakeOpenAI(behaviours.picks_first()) as fake:
        config = judged_job_config(demo_tiny_model, fake, train={"max_steps": 3, "lr": 1e-3}, max_new_tokens=12, batch_size=4)
        prepared = prepare(config, tmp_path)
        assert prepared.heldout is not None and prepared.heldout.items
        assert len(prepared.heldout.items) + prepared.heldout.dropped_near_duplicates == 12
        assert prepared.heldout.source.startswith("eval file")

        job = start_job(prepared).wait(timeout=900)
        assert job.state == "succeeded", job.error
        n = len(prepared.heldout.items)
        answers = AnswerSet.load(job.adapter_path.parent)
        assert answers is not None and len(answers.pairs) == n and answers.max_new_tokens == 12
        sent = judge_requests(job)  # 2 * n, less one per pair whose two answers are the same
        assert fake.calls == sent
        report = job.evaluation
        assert report is not None and len(report.rows) == n
        assert report.requests_sent == sent and report.cache_hits == 2 * n - sent
        assert (report.wins, report.ties, report.losses) == (0, n, 0)  # picks-first: every pair flips
        assert report.consistency == 0.0 and report.win_rate == 0.5
        assert report.table.shape[0] == n and {"finetuned", "base", "outcome"} <= set(report.table.columns)
        assert (job.folder.path / "evaluation.html").is_file()
        assert HeldOut.load(job.folder.path).items == prepared.heldout.items
        kinds = [e.data.get("stage") for e in job.events(kinds={"evaluation"})]
        assert "done" in kinds and "answers" in kinds

        # the base answers are the base model's: the same greedy answers as a fresh load of it, no adapter
        from unsloth import FastLanguageModel

        from unsloth_nb.engine.generation import judge_settings
        from unsloth_nb.evaluate.answers import generate_batch
        from unsloth_nb.evaluate.holdout import HeldOut as Held

        base, tokenizer = FastLanguageModel.from_pretrained(
            str(demo_tiny_model), max_seq_length=512, load_in_4bit=False, dtype=None
        )
        FastLanguageModel.for_inference(base)
        items = Held.load(job.folder.path).items[:4]
        fresh = generate_batch(base, tokenizer, [item.messages for item in items], judge_settings("greedy", 12, None))
        assert fresh == [pair.base for pair in answers.pairs[:4]]

        # the job view shows the result: a win/tie/loss bar and the table
        from unsloth_nb.ui.view import JobView

        view = JobView(job)
        page = view.static_html()
        assert "unsloth-nb-evaluation" in page and f"tie {n}" in page and "position-consistent in 0%" in page
        view.close()

        # a re-run from the CLI reuses the answers and the judge's cache: 0 API calls, $0
        fake.reset()
        assert main(["eval", job.id, "--json"]) == 0
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert fake.calls == 0
        assert out["summary"]["requests_sent"] == 0 and out["summary"]["cost_usd"] == 0.0
        assert out["summary"]["cache_hits"] == 2 * n


def test_a_judge_that_is_down_keeps_the_trained_adapter(
    demo_tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from unsloth_nb.jobrun.controller import start_job
    from unsloth_nb.jobrun.preflight import prepare

    monkeypatch.setenv("OPENAI_API_KEY", FakeOpenAI.api_key)
    with FakeOpenAI(behaviours.server_error()) as fake:
        config = judged_job_config(demo_tiny_model, fake, train={"max_steps": 1}, max_questions=2, max_new_tokens=4, timeout=2)
        job = start_job(prepare(config, tmp_path)).wait(timeout=900)
        assert job.state == "succeeded"
        assert job.adapter_path is not None and (job.adapter_path / "adapter_config.json").is_file()
        failed = [e.data for e in job.events(kinds={"evaluation"}) if e.data.get("stage") == "failed"]
        assert failed and "unavailable" in failed[0]["error"]
        from unsloth_nb.ui.view import JobView

        view = JobView(job)
        assert "Evaluation failed (the adapter is kept)" in view.static_html()
        view.close()
        assert fake.calls >= 1


def test_holdout_split_drops_near_duplicates_and_says_how_many(demo_tiny_model: Path, tmp_path: Path) -> None:
    """The demo set repeats its questions in many wordings: a held-out row's twins stay in training, so it is dropped."""
    from unsloth_nb.api import as_config
    from unsloth_nb.errors import UnslothNbError
    from unsloth_nb.jobrun.preflight import prepare

    rows = [json.loads(line) for line in DEMO.read_text().splitlines()]
    unique = {r["prompt"]: r for r in rows}
    data = tmp_path / "qa.jsonl"
    data.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [*rows[:40], {"prompt": "Which colour is the sky on Mars?", "completion": "Butterscotch by day."}]
        )
    )
    config = as_config({"model": str(demo_tiny_model), "dataset": str(data), "placement": "local", "judge": {"holdout": 0.5}})
    prepared = prepare(config, tmp_path, check_secrets=False)
    heldout = prepared.heldout
    assert heldout.dropped_near_duplicates > 0
    trained = {m["content"] for row in prepared.dataset.train for m in row["messages"] if m["role"] == "user"}
    assert not {item.question for item in heldout.items} & trained
    assert len(prepared.dataset.train) + len(heldout.items) + heldout.dropped_near_duplicates == 41
    assert len(unique) > 0
    only_twins = tmp_path / "twins.jsonl"
    only_twins.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))  # the same row twice
    with pytest.raises(UnslothNbError, match="near-duplicates"):
        prepare(
            as_config({**config.to_dict(), "dataset": {"path": str(only_twins)}, "judge": {"holdout": 1}}),
            tmp_path,
            check_secrets=False,
        )


@pytest.mark.timeout(600)
def test_on_an_emulated_pod_answers_come_from_the_pod_and_the_judge_runs_here(
    runpod_emulator, demo_tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pod generates both answers after training and before it is terminated; the answers come back as an
    artifact; the judge (and its key) stay on this machine: the pod never sees OPENAI_API_KEY."""
    import unsloth_nb

    monkeypatch.setenv("OPENAI_API_KEY", FakeOpenAI.api_key)
    with FakeOpenAI(behaviours.picks_first()) as fake:
        job = unsloth_nb.train(
            model=str(demo_tiny_model),
            dataset=str(DEMO),
            placement="runpod",
            train={"max_steps": 2, "batch_size": 2, "grad_accum": 1, "max_seq_length": 512, "warmup_steps": 0},
            lora={"r": 8, "alpha": 8},
            judge={"base_url": fake.base_url, "eval_path": str(EVAL), "max_questions": 3, "max_new_tokens": 6},
        )
        pod_env: list[str] = []

        def grab_env(event) -> None:
            if event.kind == "status" and event.data.get("state") == "training" and job.record.pod_id and not pod_env:
                info = runpod_emulator.pod(job.record.pod_id)
                if info is not None:
                    pod_env.append(json.dumps(info.env))

        job.log.subscribe(grab_env, replay=True)
        job.wait(timeout=580)
        assert job.state == "succeeded", job.error
        assert pod_env and FakeOpenAI.api_key not in pod_env[0]
        states = [e["state"] for e in job.events() if e.kind == "status"]
        assert states.index("evaluating") < states.index("downloading") < states.index("terminating")
        answers_on_pod = [e for e in job.events(kinds={"evaluation"}) if e.data.get("stage") == "answers"]
        assert answers_on_pod, "the pod reported no answers progress"
        report = job.evaluation
        assert report is not None and len(report.rows) == 3 and report.consistency == 0.0
        assert fake.calls == judge_requests(job)  # 6 (3 questions, both orders) unless two answers are the same
        (pod_id,) = runpod_emulator.ledger.pod_ids()
        pod_files = [p for p in (runpod_emulator.workdir / "pods" / pod_id).rglob("*") if p.is_file()]
        assert any(p.name == "answers.jsonl" for p in pod_files)  # made there
        assert not [p for p in pod_files if FakeOpenAI.api_key.encode() in p.read_bytes()]


def test_a_finished_job_is_evaluated_later_from_its_saved_adapter(
    demo_tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No judge: section at training time: ``evaluate_job`` loads the adapter (the plan placed it here) and judges
    the questions of an eval file; without one it says what to pass."""
    from unsloth_nb.api import as_config
    from unsloth_nb.evaluate import EvaluationError
    from unsloth_nb.jobrun.controller import load_job, start_job
    from unsloth_nb.jobrun.evaluation import evaluate_job
    from unsloth_nb.jobrun.preflight import prepare

    monkeypatch.setenv("OPENAI_API_KEY", FakeOpenAI.api_key)
    config = as_config(
        {
            "model": {"name": str(demo_tiny_model), "load_in_4bit": False},
            "dataset": str(DEMO),
            "train": {"max_steps": 1, "batch_size": 4, "grad_accum": 1, "warmup_steps": 0, "max_seq_length": 512},
            "placement": "local",
        }
    )
    finished = start_job(prepare(config, tmp_path)).wait(timeout=600)
    assert finished.state == "succeeded"
    with pytest.raises(EvaluationError, match="eval_path"):
        evaluate_job(load_job(finished.id, reattach=False))
    with FakeOpenAI(behaviours.picks_first()) as fake:
        report = evaluate_job(
            load_job(finished.id, reattach=False), eval_path=str(EVAL), base_url=fake.base_url, max_questions=2, max_new_tokens=4
        )
        assert len(report.rows) == 2 and fake.calls == judge_requests(finished)
        assert load_job(finished.id, reattach=False).model is None  # a fresh handle: the adapter was loaded from disk
        assert (finished.folder.path / "evaluation.json").is_file()


def test_a_job_that_cannot_ask_about_the_judges_cost_does_not_spend_it(
    demo_tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """confirm_above_usd 0 always asks; a running job cannot ask, so it sends nothing and says how to go on."""
    from unsloth_nb.api import as_config
    from unsloth_nb.jobrun.controller import start_job
    from unsloth_nb.jobrun.preflight import prepare

    monkeypatch.setenv("OPENAI_API_KEY", FakeOpenAI.api_key)
    with FakeOpenAI(behaviours.picks_first()) as fake:
        config = as_config(
            {
                "model": {"name": str(demo_tiny_model), "load_in_4bit": False},
                "dataset": str(DEMO),
                "train": {"max_steps": 1, "batch_size": 4, "grad_accum": 1, "warmup_steps": 0, "max_seq_length": 512},
                "placement": "local",
                "judge": {
                    "base_url": fake.base_url,
                    "eval_path": str(EVAL),
                    "max_questions": 2,
                    "max_new_tokens": 4,
                    "confirm_above_usd": 0,
                },
            }
        )
        prepared = prepare(config, tmp_path)
        assert any("asks first above judge.confirm_above_usd ($0.00)" in r for r in prepared.plan.reasons)
        job = start_job(prepared).wait(timeout=600)
        assert job.state == "succeeded" and job.adapter_path is not None
        failed = [e.data for e in job.events(kinds={"evaluation"}) if e.data.get("stage") == "failed"]
        assert failed and "--yes" in failed[0]["error"] and fake.calls == 0

        yes = prepare(config, tmp_path)
        yes.judge_yes = True  # what `unsloth-nb train --yes` and `%unsloth_train --yes` set
        judged = start_job(yes).wait(timeout=600)
        assert judged.evaluation.wins == 0 and fake.calls == judge_requests(judged)
