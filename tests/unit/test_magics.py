"""%unsloth_train, %%unsloth_train and %unsloth_jobs in an in-process IPython shell.

A plain InteractiveShell has no kernel, so the magic follows a job to its end
unless --no-wait is given; in a notebook it always returns at once.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from unsloth_nb.config import TrainConfig, field_specs
from unsloth_nb.demo import demo_dataset_path
from unsloth_nb.jobrun.job import Job
from unsloth_nb.jobrun.store import jobs_root
from unsloth_nb.testing.runpod_emulator import RunPodEmulator
from unsloth_nb.ui.jobs_table import JobTable

DEMO = demo_dataset_path()


@pytest.fixture
def ip() -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "unsloth_nb")
    yield shell
    for name in ("job", "failed"):
        shell.user_ns.pop(name, None)


def run(ip: InteractiveShell, source: str) -> tuple[bool, str]:
    """Run a cell as a user would; returns (success, everything it printed or displayed as text)."""
    with capture_output() as captured:
        result = ip.run_cell(source)
    displayed = "".join(str(output.data.get("text/plain", "")) for output in captured.outputs)
    return result.success, captured.stdout + captured.stderr + displayed


def job_folders() -> list[Path]:
    root = jobs_root()
    return sorted(root.iterdir()) if root.is_dir() else []


#: A 70B job on RunPod: on the demo data it is estimated under the default $1, so tests that need the question set --confirm-above.
BIG_RUNPOD_FLAGS = f"--model unsloth/Llama-3.3-70B-Instruct --dataset {DEMO} --placement runpod"


def tiny_flags(model: Path, steps: int = 3) -> str:
    return f"--model {model} --dataset {DEMO} --max-steps {steps} --warmup-steps 1 --max-seq-length 512 --placement local"


def test_load_ext_registers_the_magics_without_the_training_stack() -> None:
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'unsloth_nb')\n"
        "assert 'unsloth_train' in ip.magics_manager.magics['line']\n"
        "assert 'unsloth_train' in ip.magics_manager.magics['cell']\n"
        "assert 'unsloth_jobs' in ip.magics_manager.magics['line']\n"
        "heavy = [m for m in ('torch', 'transformers', 'unsloth', 'trl', 'plotly', 'ipywidgets', 'anywidget') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_line_magic_starts_a_job_and_stores_it(ip: InteractiveShell, tiny_model: Path) -> None:
    ok, output = run(ip, f"%unsloth_train {tiny_flags(tiny_model)} --no-wait -o job")
    assert ok, output
    job = ip.user_ns["job"]
    assert isinstance(job, Job)

    ok, output = run(ip, "job.wait()")

    assert ok, output
    assert job.state == "succeeded"
    assert job.adapter_path is not None and (job.adapter_path / "adapter_config.json").is_file()
    assert job.model is not None and job.tokenizer is not None


def test_cell_magic_reads_yaml_and_line_flags_override_it(ip: InteractiveShell, tiny_model: Path) -> None:
    body = (
        f"model: {tiny_model}\n"
        f"dataset: {DEMO}\n"
        "placement: local\n"
        "lora: {r: 4, alpha: 8}\n"
        "train: {max_steps: 50, lr: 1.0e-3, warmup_steps: 1, max_seq_length: 512}\n"
    )

    with capture_output() as captured:
        ip.run_cell_magic("unsloth_train", "-o job --max-steps 2", body)

    job = ip.user_ns["job"]
    assert job.state == "succeeded", captured.stdout + captured.stderr
    assert job.config.train.max_steps == 2  # the line wins
    assert job.config.train.lr == pytest.approx(1e-3)  # the body holds the rest
    assert (job.config.lora.r, job.config.lora.alpha) == (4, 8)
    assert [m["step"] for m in job.metrics() if "loss" in m][-1] == 2


def test_a_bad_flag_is_a_short_message_and_starts_nothing(ip: InteractiveShell, tiny_model: Path) -> None:
    ok, output = run(ip, f"%unsloth_train {tiny_flags(tiny_model)} --lora-r many")

    assert not ok
    assert "UsageError: --lora-r (lora.r): expected a whole number, got 'many'" in output
    assert "Traceback" not in output
    assert job_folders() == []

    ok, output = run(ip, f"%unsloth_train {tiny_flags(tiny_model)} --epoch 2")
    assert not ok and "unknown flag --epoch; did you mean --epochs?" in output and "Traceback" not in output
    assert "see %unsloth_train? for the list of flags" in output and "--help" not in output


def test_a_bad_dataset_is_a_short_message_and_starts_nothing(ip: InteractiveShell, tiny_model: Path, tmp_path: Path) -> None:
    data = tmp_path / "broken.jsonl"
    data.write_text('{"question": "Who won?", "answer": "The Eagles"}\n{"question": "Score?"}\nnot json\n')

    ok, output = run(ip, f"%unsloth_train --model {tiny_model} --dataset {data} --placement local")

    assert not ok
    assert "UsageError" in output and "broken.jsonl:2" in output and "broken.jsonl:3" in output
    assert "Traceback" not in output
    assert job_folders() == []


def test_help_prints_every_flag_and_keeps_the_shell(ip: InteractiveShell) -> None:
    ok, output = run(ip, "%unsloth_train --help")
    assert ok, output
    assert "--max-steps" in output and "--lora-r" in output

    ok, output = run(ip, "%unsloth_train -h")
    assert ok and "--dataset" in output

    ok, output = run(ip, "print(1 + 1)")
    assert ok and output.strip() == "2"


def test_question_mark_documents_every_flag(ip: InteractiveShell) -> None:
    ok, output = run(ip, "%unsloth_train?")

    assert ok
    flags = [spec.flag for spec in field_specs(TrainConfig) if spec.flag]
    missing = [flag for flag in flags if flag not in output]
    assert not missing
    for flag in ("--yes", "-o", "--no-wait", "--config"):
        assert flag in output


def test_an_invalid_output_name_is_refused(ip: InteractiveShell, tiny_model: Path) -> None:
    ok, output = run(ip, f"%unsloth_train {tiny_flags(tiny_model)} -o 2jobs")
    assert not ok and "valid Python variable name" in output
    assert job_folders() == []


def test_a_failed_job_shows_its_message_without_a_traceback(ip: InteractiveShell, tiny_model: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model, broken)
    (broken / "model.safetensors").unlink()

    ok, output = run(ip, f"%unsloth_train {tiny_flags(broken)} --no-wait -o failed")
    assert ok, output

    ok, output = run(ip, "failed.wait()")
    assert not ok
    assert "JobFailedError" in output and "cannot load" in output
    assert "Traceback" not in output

    ok, output = run(ip, "await failed")
    assert not ok and "JobFailedError" in output and "Traceback" not in output

    ok, output = run(ip, "1 / 0")  # other errors keep their traceback
    assert not ok and "ZeroDivisionError" in output and "Traceback" in output


def test_a_runpod_plan_waits_for_yes(ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "rp_not_a_real_key_for_tests")

    ok, output = run(ip, f"%unsloth_train {BIG_RUNPOD_FLAGS} --confirm-above 0")

    assert not ok
    assert "RunPod" in output and "--yes" in output and "runpod.confirm_above_usd is 0" in output
    assert "rp_not_a_real_key_for_tests" not in output
    assert job_folders() == []


def test_in_a_notebook_a_rental_asks_with_buttons(ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    import comm
    from ipywidgets.widgets.widget import _instances

    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: comm.DummyComm(**kwargs))  # a front end that renders widgets
    monkeypatch.setenv("RUNPOD_API_KEY", "rp_not_a_real_key_for_tests")

    with capture_output() as captured:
        ip.run_line_magic("unsloth_train", f"{BIG_RUNPOD_FLAGS} --confirm-above 0.05 --max-cost 20 -o job")

    box = _instances[captured.outputs[-1].data["application/vnd.jupyter.widget-view+json"]["model_id"]]
    question, (rent, cancel) = box.children[0], box.children[1].children
    assert "Rent a RunPod GPU for this job (estimated $" in question.value and "/h; " in question.value
    assert "runpod.max_cost_usd stops it at $20.00)?" in question.value
    assert rent.description == "Rent and start"
    assert job_folders() == [] and "job" not in ip.user_ns
    cancel.click()
    assert "not confirmed" in box.children[0].value
    assert job_folders() == [] and "job" not in ip.user_ns


def test_a_cheap_rental_starts_without_asking(
    ip: InteractiveShell, tiny_model: Path, runpod_emulator: RunPodEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import comm

    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: comm.DummyComm(**kwargs))  # a front end that renders widgets
    flags = f"--model {tiny_model} --dataset {DEMO} --max-steps 2 --warmup-steps 0 --max-seq-length 512 --placement runpod"

    ok, output = run(ip, f"%unsloth_train {flags} --no-wait -o job")  # a few cents: under the default $1

    assert ok, output
    assert "Renting without asking: estimated $0." in output and "within runpod.confirm_above_usd ($1.00)" in output
    assert "Rent a RunPod GPU" not in output
    job = ip.user_ns["job"]
    job.wait(timeout=240)
    assert job.state == "succeeded" and job.placement == "runpod"
    assert len(runpod_emulator.ledger.pod_ids()) == 1 and runpod_emulator.ledger.running_pods() == []


def test_unsloth_jobs_lists_jobs_and_redraws_one(ip: InteractiveShell, tiny_model: Path) -> None:
    assert len(ip.run_line_magic("unsloth_jobs", "")) == 0
    with capture_output():
        ip.run_line_magic("unsloth_train", f"{tiny_flags(tiny_model, steps=2)} -o job")
    job = ip.user_ns["job"]

    table = ip.run_line_magic("unsloth_jobs", "")

    assert isinstance(table, JobTable)
    assert job.id in repr(table) and job.id in table._repr_html_()
    ok, output = run(ip, f"%unsloth_jobs {job.id}")
    assert ok and "succeeded" in output and "step 2/2" in output
    with pytest.raises(UsageError, match="no job 'nope'"):
        ip.run_line_magic("unsloth_jobs", "nope")


def test_unload_removes_the_magics(ip: InteractiveShell) -> None:
    ip.run_line_magic("unload_ext", "unsloth_nb")
    try:
        assert "unsloth_train" not in ip.magics_manager.magics["line"]
        ok, output = run(ip, "%unsloth_jobs")
        assert not ok and "not found" in output
    finally:
        ip.run_line_magic("load_ext", "unsloth_nb")
    assert "unsloth_train" in ip.magics_manager.magics["cell"]


def test_every_mistake_shows_in_one_run(ip: InteractiveShell, tmp_path: Path) -> None:
    """`--model x --dataset missing.jsonl --lora-r 0` used to need three runs to reveal three mistakes."""
    ok, output = run(ip, f"%unsloth_train --model {tmp_path}/x --dataset {tmp_path}/missing.jsonl --lora-r 0 --epoch 2")

    assert not ok and "Traceback" not in output
    assert "4 problems; nothing was started" in output
    assert "unknown flag --epoch; did you mean --epochs? (see %unsloth_train? for the list of flags)" in output
    assert "--lora-r (lora.r): must be at least 1, got 0" in output
    assert "dataset not found" in output and "no model folder at" in output
    assert job_folders() == []


def test_keys_are_asked_for_after_the_plan_is_shown(ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a kernel the missing keys are asked for in a hidden prompt, all of them, once the plan and its price are on screen."""
    import getpass
    import sys

    import ipykernel  # noqa: F401  (a kernel's getpass goes to the front end's password box)

    for name in ("RUNPOD_API_KEY", "HF_TOKEN"):
        monkeypatch.setenv(name, "placeholder")  # so that the value the prompt sets is undone after the test
        monkeypatch.delenv(name)
    monkeypatch.setattr(ip, "kernel", object(), raising=False)
    asked: list[tuple[str, str]] = []

    def password_box(prompt: str = "") -> str:
        asked.append((prompt, sys.stdout.getvalue()))
        return "rp_typed_in_the_box_" + str(len(asked))

    monkeypatch.setattr(getpass, "getpass", password_box)

    ok, output = run(ip, f"%unsloth_train {BIG_RUNPOD_FLAGS} --hub-id me/big-lora --confirm-above 0")

    assert [prompt.split(" ", 1)[0] for prompt, _ in asked] == ["HF_TOKEN", "RUNPOD_API_KEY"]
    shown_before_asking = asked[0][1]
    assert "Plan: unsloth/Llama-3.3-70B-Instruct on RunPod" in shown_before_asking and "/h" in shown_before_asking
    assert not ok and "--yes" in output  # then the rental still waits for a yes
    assert "rp_typed_in_the_box_" not in output
    assert job_folders() == []


def test_without_a_prompt_every_missing_key_is_named(ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RUNPOD_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)

    ok, output = run(ip, f"%unsloth_train {BIG_RUNPOD_FLAGS} --hub-id me/big-lora --yes")

    assert not ok and "2 keys are not set: HF_TOKEN (needed to push" in output and "RUNPOD_API_KEY (needed to" in output
    assert "when prompted" not in output
    assert job_folders() == []
