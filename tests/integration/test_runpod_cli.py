"""``unsloth-nb runpod ...`` against the RunPod emulator, through the unmodified ``runpod`` SDK.

The commands run in-process through the real entry point (``unsloth_nb.cli.main``),
so what is checked is exactly what a terminal prints and the exit code it gets.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from unsloth_nb.backends.runpod.api_types import PodSpec
from unsloth_nb.backends.runpod.client import RunPodClient
from unsloth_nb.cli import main
from unsloth_nb.jobrun.store import JobFolder, JobRecord, list_jobs
from unsloth_nb.testing.runpod_emulator import RunPodEmulator

pytestmark = pytest.mark.timeout(300)

A40 = "NVIDIA A40"


def rent(name: str, gpu_type_id: str = A40) -> str:
    """A pod that only sleeps: these commands never talk to a worker."""
    return RunPodClient().create_pod(PodSpec(name=name, image="img", gpu_type_id=gpu_type_id, docker_args="exec sleep 600")).id


def live_job_owning(pod_id: str, job_id: str = "20261128-120000-live") -> JobRecord:
    """A job folder as a running job on this machine leaves it (this process owns it)."""
    record = JobRecord(id=job_id, model="m", dataset="d", placement="runpod", state="training", pid=os.getpid(), pod_id=pod_id)
    JobFolder.create(record, {})
    return record


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["runpod", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_gpus_lists_memory_prices_and_stock(runpod_emulator: RunPodEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    runpod_emulator.gpus["NVIDIA H200"].available = 0
    code, out, err = run(capsys, "gpus")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["GPU", "TYPE", "ID", "MEMORY", "SECURE", "$/H", "COMMUNITY", "$/H", "STOCK", "(SECURE/COMMUNITY)"]
    rows = {line.split("  ")[0]: line for line in lines[1:]}
    assert set(rows) == set(runpod_emulator.gpus)
    assert "$0.69" in rows["NVIDIA GeForce RTX 4090"] and "$0.34" in rows["NVIDIA GeForce RTX 4090"]
    assert rows["NVIDIA A40"].rstrip().endswith("High/-")  # not offered in Community Cloud
    assert rows["NVIDIA H200"].rstrip().endswith("None/None")  # nothing free
    assert "'-' means the GPU is not offered in that cloud" in err

    code, out, _ = run(capsys, "gpus", "--json", "--min-memory", "80")
    assert code == 0
    listed = [json.loads(line) for line in out.splitlines()]
    assert {g["id"] for g in listed} == {g.id for g in runpod_emulator.gpus.values() if g.memory_gb >= 80}
    assert all(g["memory_gb"] >= 80 for g in listed)


def test_list_shows_our_pods_first_with_their_jobs(runpod_emulator: RunPodEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    other = rent("aaa-someone-elses-pod")
    ours = rent("unsloth-nb-20261128-120000-live")
    live_job_owning(ours)
    try:
        runpod_emulator.wait_for(lambda: all(runpod_emulator.pod(p).container_up for p in (other, ours)))
        code, out, _ = run(capsys, "list")
        assert code == 0
        lines = out.splitlines()
        assert lines[0].split() == ["POD", "ID", "NAME", "STATUS", "GPU", "UPTIME", "$/H", "JOB"]
        assert lines[1].startswith(ours) and "20261128-120000-live (training)" in lines[1]
        assert "RUNNING" in lines[1] and "A40" in lines[1] and "$0.44" in lines[1]
        assert lines[2].startswith(other) and lines[2].rstrip().endswith("-")

        code, out, _ = run(capsys, "list", "--json", "--ours")
        assert code == 0
        (pod,) = [json.loads(line) for line in out.splitlines()]
        assert (pod["id"], pod["job_id"], pod["job_state"], pod["usd_per_hour"]) == (
            ours,
            "20261128-120000-live",
            "training",
            0.44,
        )
    finally:
        assert run(capsys, "terminate", ours, other)[0] == 0


def test_stop_then_terminate(runpod_emulator: RunPodEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    pod_id = rent("unsloth-nb-20261128-120001-stop")
    code, out, _ = run(capsys, "stop", pod_id)
    assert code == 0 and "stopped" in out
    assert runpod_emulator.pod(pod_id).desired_status == "EXITED"
    assert pod_id not in runpod_emulator.ledger.running_pods()

    code, out, _ = run(capsys, "terminate", pod_id)
    assert code == 0 and f"pod {pod_id} terminated (confirmed" in out
    assert runpod_emulator.pod(pod_id) is None


def test_terminate_is_confirmed_and_unknown_ids_are_refused(
    runpod_emulator: RunPodEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    pod_id = rent("unsloth-nb-20261128-120002-term")
    runpod_emulator.faults.update({"silent_terminate_failures": 1})
    code, out, _ = run(capsys, "terminate", pod_id)
    assert code == 0 and "confirmed" in out
    assert runpod_emulator.pod(pod_id) is None and runpod_emulator.ledger.running_pods() == []

    code, _, err = run(capsys, "terminate", "nosuchpod00000")
    assert code == 2 and "there is no pod nosuchpod00000" in err
    code, _, err = run(capsys, "stop", "nosuchpod00000")
    assert code == 1 and "no pod nosuchpod00000" in err


def test_cleanup_terminates_only_pods_no_live_job_owns(
    runpod_emulator: RunPodEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    orphan = rent("unsloth-nb-20261128-110000-dead")
    owned = rent("unsloth-nb-20261128-120000-live")
    someone_elses = rent("my-notebook-pod")
    live_job_owning(owned)
    try:
        code, out, err = run(capsys, "cleanup")  # stdin is not a terminal: nothing happens without --yes
        assert code == 2 and "--yes" in err
        assert orphan in out and owned not in out and someone_elses not in out
        assert runpod_emulator.pod(orphan) is not None

        code, out, _ = run(capsys, "cleanup", "--dry-run")
        assert code == 0 and orphan in out and runpod_emulator.pod(orphan) is not None

        code, out, _ = run(capsys, "cleanup", "--yes")
        assert code == 0 and f"pod {orphan} terminated (confirmed" in out
        assert runpod_emulator.pod(orphan) is None
        assert runpod_emulator.pod(owned) is not None and runpod_emulator.pod(someone_elses) is not None

        code, out, _ = run(capsys, "cleanup", "--yes")
        assert code == 0 and "nothing to clean up" in out
    finally:
        assert run(capsys, "terminate", owned, someone_elses)[0] == 0


def test_a_refused_key_and_a_missing_key_exit_2(
    runpod_emulator: RunPodEmulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "rpa_NOT_THE_KEY")
    code, _, err = run(capsys, "list")
    assert code == 2 and "RunPod refused the API key" in err and "rpa_NOT_THE_KEY" not in err

    import runpod

    monkeypatch.delenv("RUNPOD_API_KEY")
    monkeypatch.setattr(runpod, "api_key", None)
    code, _, err = run(capsys, "list")
    assert code == 2 and "RUNPOD_API_KEY is not set" in err
    assert run(capsys, "bogus")[0] == 2
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "runpod config" not in out  # no such command


def test_gpus_without_a_key_shows_the_offline_catalogue(
    runpod_emulator: RunPodEmulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import runpod

    from unsloth_nb.planning.gpu_catalog import GPU_CATALOG

    monkeypatch.delenv("RUNPOD_API_KEY")
    monkeypatch.setattr(runpod, "api_key", None)
    code, out, err = run(capsys, "gpus")

    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["GPU", "TYPE", "ID", "MEMORY", "SECURE", "$/H", "COMMUNITY", "$/H", "STOCK"]
    assert {line.split("  ")[0] for line in lines[1:]} == {g.gpu_type_id for g in GPU_CATALOG}
    assert "offline catalogue" in err and "indicative" in err and "'-' means" in err
    code, out, _ = run(capsys, "gpus", "--json", "--min-memory", "80")
    assert code == 0 and all(json.loads(line)["source"] == "catalogue" for line in out.splitlines())


def test_runpod_train_runs_a_job_on_an_emulated_pod(
    runpod_emulator: RunPodEmulator,
    capsys: pytest.CaptureFixture[str],
    tiny_model: Path,
    tmp_path: Path,
    superbowl_rows: list[dict],
) -> None:
    dataset = tmp_path / "qa.jsonl"
    dataset.write_text(
        "\n".join(json.dumps({"prompt": r["prompt"], "completion": r["completion"][:160]}) for r in superbowl_rows)
    )
    flags = ["--model", str(tiny_model), "--dataset", str(dataset), "--max-steps", "2", "--batch-size", "2"]
    flags += ["--grad-accum", "1", "--max-seq-length", "512", "--lora-r", "8", "--warmup-steps", "0", "--json"]

    # a threshold of 0 always asks; no --yes and no terminal: refused before anything is rented
    code, _, err = run(capsys, "train", *flags, "--confirm-above", "0")
    assert code == 2 and "--yes" in err and list_jobs() == [] and runpod_emulator.ledger.pod_ids() == []

    code, out, _ = run(capsys, "train", *flags, "--yes")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    states = [e["data"]["state"] for e in events if e["kind"] == "status"]
    assert states[-3:] == ["downloading", "terminating", "succeeded"]
    (job,) = list_jobs()
    assert job.state == "succeeded" and job.pod_id and runpod_emulator.pod(job.pod_id) is None
    assert (Path(job.artifacts["adapter"]) / "adapter_config.json").is_file()


def test_runpod_train_output_in_a_pipe_is_unwrapped_unrepeated_and_ends_with_the_cost(
    runpod_emulator: RunPodEmulator,
    capsys: pytest.CaptureFixture[str],
    tiny_model: Path,
    tmp_path: Path,
    superbowl_rows: list[dict],
) -> None:
    dataset = tmp_path / "qa.jsonl"
    dataset.write_text(
        "\n".join(json.dumps({"prompt": r["prompt"], "completion": r["completion"][:160]}) for r in superbowl_rows)
    )
    flags = ["--model", str(tiny_model), "--dataset", str(dataset), "--max-steps", "2", "--batch-size", "2"]
    flags += ["--grad-accum", "1", "--max-seq-length", "512", "--lora-r", "8", "--warmup-steps", "0", "--yes"]

    code, _, err = run(capsys, "train", *flags)  # stderr is captured: not a terminal

    assert code == 0
    lines = err.rstrip().splitlines()
    assert lines[-1].startswith("job ") and " succeeded." in lines[-1]
    assert "Final cost: $" in lines[-1]
    # Said once: in the plan, not again when the pod starts.
    assert err.count("No train.save_steps: if the pod is lost") == 1
    # No status line is cut at 80 columns (tests/unit/test_cli_output.py checks long lines directly).
    assert not [line for line in lines if line.startswith(("$", "ETA", "| "))]


def test_a_failed_runpod_job_says_why_once(
    runpod_emulator: RunPodEmulator,
    capsys: pytest.CaptureFixture[str],
    tiny_model: Path,
    tmp_path: Path,
    superbowl_rows: list[dict],
) -> None:
    for gpu in runpod_emulator.gpus.values():
        gpu.available = 0  # nothing to rent anywhere
    dataset = tmp_path / "qa.jsonl"
    dataset.write_text(
        "\n".join(json.dumps({"prompt": r["prompt"], "completion": r["completion"][:160]}) for r in superbowl_rows[:8])
    )
    flags = [
        "--model",
        str(tiny_model),
        "--dataset",
        str(dataset),
        "--max-steps",
        "2",
        "--yes",
        "--save-steps",
        "1",
        "--warmup-steps",
        "0",
    ]

    code, _, err = run(capsys, "train", *flags)

    assert code == 1
    last = err.rstrip().splitlines()[-1]
    assert last.startswith("job ") and " failed: " in last
    reason = last.split(" failed: ", 1)[1].split(" Final cost:")[0]
    assert err.count(reason) == 1, err


def test_cleanup_settles_a_job_whose_owner_died_and_whose_pod_ended_itself(
    runpod_emulator: RunPodEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """No pod to end, yet a ``training`` record nobody runs: cleanup says it is over, and why."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # an owner that died
    pod = rent("unsloth-nb-20261128-130000-gone")
    assert run(capsys, "terminate", pod)[0] == 0  # as its worker does on its idle timeout
    orphan = JobRecord(
        id="20261128-130000-gone", model="m", dataset="d", placement="runpod", state="training", pid=child.pid, pod_id=pod
    )
    JobFolder.create(orphan, {})
    watched = live_job_owning("nosuchpod00000", job_id="20261128-140000-live")

    code, out, _ = run(capsys, "cleanup", "--dry-run")
    assert code == 0 and f"job {orphan.id} would be marked failed" in out and watched.id not in out
    assert JobFolder.open(orphan.id).load_record().state == "training"

    code, out, _ = run(capsys, "cleanup", "--yes")
    assert code == 0 and f"job {orphan.id} marked failed: its process ended before the job did, and its pod {pod}" in out
    settled = JobFolder.open(orphan.id).load_record()
    assert settled.state == "failed" and "ended while nobody watched" in (settled.error or "")
    assert JobFolder.open(watched.id).load_record().state == "training"

    code, out, _ = run(capsys, "cleanup", "--yes")
    assert code == 0 and "nothing to clean up" in out
