"""The Python API and the Job handle, end to end on the tiny model in this process."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import unsloth_nb
from unsloth_nb.errors import DatasetError, JobFailedError, UnslothNbError
from unsloth_nb.jobrun.controller import load_job
from unsloth_nb.jobrun.job import Job


def rows_file(tmp_path: Path, rows: list[dict], count: int = 24) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text(
        "".join(json.dumps({"prompt": r["prompt"], "completion": r["completion"][:120]}) + "\n" for r in rows[:count])
    )
    return path


def settings(tiny_model: Path, dataset: Path, **train: object) -> dict:
    return {
        "model": {"name": str(tiny_model), "load_in_4bit": False},
        "dataset": str(dataset),
        "train": {
            "max_steps": 6,
            "batch_size": 2,
            "grad_accum": 1,
            "warmup_steps": 1,
            "max_seq_length": 128,
            "lr": 5e-3,
            **train,
        },
        "placement": "local",
    }


def test_a_job_runs_through_its_states_and_records_everything(
    tiny_model: Path, superbowl_rows: list[dict], tmp_path: Path
) -> None:
    job = unsloth_nb.train(settings(tiny_model, rows_file(tmp_path, superbowl_rows)), wait=True)

    assert job.state == "succeeded"
    states = [e.data["state"] for e in job.events(kinds={"status"})]
    assert states == ["created", "planning", "starting", "training", "saving", "succeeded"]
    seqs = [e.seq for e in job.events()]
    assert seqs == list(range(len(seqs)))
    steps = [m["step"] for m in job.metrics() if "loss" in m]
    assert steps == sorted(steps) and steps[-1] == 6
    assert job.adapter_path is not None and (job.adapter_path / "adapter_config.json").is_file()
    assert job.model is not None and job.tokenizer is not None

    folder = job.folder.path
    assert {p.name for p in folder.iterdir()} >= {"job.json", "config.json", "plan.json", "events.jsonl", "outputs"}
    assert json.loads((folder / "job.json").read_text())["state"] == "succeeded"
    assert [r.id for r in unsloth_nb.jobs()] == [job.id]


def test_a_reloaded_job_replays_its_history(tiny_model: Path, superbowl_rows: list[dict], tmp_path: Path) -> None:
    job = unsloth_nb.train(settings(tiny_model, rows_file(tmp_path, superbowl_rows)), wait=True)
    again = load_job(job.id)  # as after a kernel restart: a new handle read from the job folder
    assert again is not job and again.state == "succeeded" and again.log.read_only
    assert [e.to_json() for e in again.events()] == [e.to_json() for e in job.events()]
    assert again.adapter_path == job.adapter_path


def test_await_and_cancel(tiny_model: Path, superbowl_rows: list[dict], tmp_path: Path) -> None:
    job = unsloth_nb.train(settings(tiny_model, rows_file(tmp_path, superbowl_rows), max_steps=2000))

    async def stop_when_training() -> Job:
        while not any(e.kind == "metrics" for e in job.events()):
            await asyncio.sleep(0.05)
        job.cancel()
        return await job

    ended = asyncio.run(stop_when_training())
    assert ended.state == "cancelled"
    assert ended.global_step < 2000
    assert ended.adapter_path is not None and ended.checkpoint_path is not None


def test_bad_input_raises_before_a_job_exists(tmp_path: Path, job_home: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "completion": "a"}\n{"prompt": \n')
    with pytest.raises(UnslothNbError, match=r"bad\.jsonl:2") as caught:  # with the model's own problem, in one pass
        unsloth_nb.train(model="anything-0.1B", dataset=str(bad), placement="local")
    assert any(isinstance(error, DatasetError) for error in caught.value.errors())
    assert not (job_home / "jobs").exists() or not any((job_home / "jobs").iterdir())


def test_a_failed_job_says_why(tiny_model: Path, superbowl_rows: list[dict], tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"  # config and tokenizer fine, weights unreadable: only loading finds out
    shutil.copytree(tiny_model, broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    job = unsloth_nb.train(settings(broken, rows_file(tmp_path, superbowl_rows)))
    with pytest.raises(JobFailedError, match="deserializing header"):
        job.wait()
    assert job.state == "failed"
    errors = job.events(kinds={"error"})
    assert errors and "deserializing header" in errors[-1].data["message"]


def test_a_job_run_by_another_process_is_followed_without_writing(
    tiny_model: Path, superbowl_rows: list[dict], tmp_path: Path, job_home: Path
) -> None:
    config = settings(tiny_model, rows_file(tmp_path, superbowl_rows), max_steps=40)
    script = textwrap.dedent(
        f"""
        import json, unsloth_nb
        job = unsloth_nb.train(json.loads({json.dumps(json.dumps(config))}))
        print(job.id, flush=True)
        job.wait()
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        job_id = owner.stdout.readline().strip()  # type: ignore[union-attr]
        follower = load_job(job_id)
        assert follower.log.read_only
        with pytest.raises(unsloth_nb.UnslothNbError, match="another process"):
            follower.cancel()
        follower.wait(timeout=300)
        assert follower.state == "succeeded"
    finally:
        owner.wait(timeout=300)
    lines = (job_home / "jobs" / job_id / "events.jsonl").read_text().splitlines()
    seqs = [json.loads(line)["seq"] for line in lines]
    assert seqs == list(range(len(seqs)))  # no duplicate written back by the follower
    assert [e.seq for e in follower.events()] == seqs
