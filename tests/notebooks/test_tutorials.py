"""The tutorials run top to bottom in a real kernel, as a reader would run them.

Each notebook is executed with nbclient in a fresh ipykernel (the venv's python3)
inside a scratch copy of the notebooks folder, with the tiny-model switch on so
it takes seconds; the job folders go to this test's UNSLOTH_NB_HOME.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from unsloth_nb.jobrun.store import jobs_root, list_jobs

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

pytestmark = pytest.mark.slow


def execute(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("UNSLOTH_NB_TUTORIAL_MODEL", "tiny")
    workdir = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, workdir)
    notebook = nbformat.read(workdir / name, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
        store_widget_state=False,
    )
    client.execute()
    return notebook


def outputs(cell: Any) -> list[Any]:
    return list(cell.get("outputs", []))


def errors(notebook: nbformat.NotebookNode) -> list[str]:
    found = []
    for index, cell in enumerate(notebook.cells):
        for output in outputs(cell):
            if output.get("output_type") == "error":
                found.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
    return found


def cell_with(notebook: nbformat.NotebookNode, text: str) -> Any:
    return next(cell for cell in notebook.cells if cell.cell_type == "code" and text in cell.source)


def displayed(cell: Any, mimetype: str) -> list[Any]:
    return [o["data"][mimetype] for o in outputs(cell) if mimetype in o.get("data", {})]


def test_quickstart_trains_with_the_magic_and_shows_the_chart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = execute("01_quickstart.ipynb", tmp_path, monkeypatch)

    assert errors(notebook) == []
    jobs = list_jobs()
    assert [job.state for job in jobs] == ["succeeded"]
    magic = cell_with(notebook, "%unsloth_train")
    assert displayed(magic, WIDGET_VIEW), "the live view (widgets with the loss chart) is missing"
    static = "".join(displayed(magic, "text/html"))
    assert "unsloth-nb-job-static" in static  # the fallback where widgets do not render
    # nbconvert / GitHub show this bundle: it must be the end of the run, not its first frame (issue 16)
    assert "succeeded" in static and "<svg" in static and "runtime" in static, static[:2000]
    assert "no metrics yet" not in static
    assert not [o for o in outputs(magic) if o.get("output_type") == "stream"], "library output reached the cell"
    redraw = cell_with(notebook, "unsloth_nb.load_job(job.id)")
    assert displayed(redraw, WIDGET_VIEW)
    assert "<svg" in "".join(displayed(redraw, "text/html"))  # the static loss picture of the finished job
    waited = "".join(o.get("text", "") for o in outputs(cell_with(notebook, "await job")))
    assert waited.startswith("succeeded")
    assert jobs[0].id in "".join(displayed(cell_with(notebook, "%unsloth_jobs"), "text/html"))
    assert (tmp_path / "notebooks" / "loss.html").is_file()


def test_training_panel_notebook_shows_the_form_and_trains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = execute("02_training_panel.ipynb", tmp_path, monkeypatch)

    assert errors(notebook) == []
    assert [job.state for job in list_jobs()] == ["succeeded"]
    panel = cell_with(notebook, "TrainingPanel(")
    assert displayed(panel, WIDGET_VIEW), "the panel's widgets are missing"
    assert "".join(displayed(panel, "text/plain")).startswith("<TrainingPanel")
    config = "".join(o.get("text", "") for o in outputs(cell_with(notebook, "panel.config().to_yaml()")))
    assert "max_steps: 5" in config


def test_job_output_lands_in_the_job_not_in_a_cell(tmp_path: Path) -> None:
    """What libraries print in the training thread goes to the job's Log and output.log, in no cell.

    ipykernel 7 sends a plain thread's output to whichever cell ran last; a job's must reach no
    other cell either (issue 16: a clean cell).
    """
    from jupyter_client.manager import KernelManager

    from unsloth_nb.demo import demo_dataset_path

    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(tmp_path))
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        setup = (
            "from pathlib import Path\n"
            "from unsloth_nb.testing.tiny_model import build_tiny_model\n"
            "MODEL = build_tiny_model(Path('tiny-model'))\n"
            "%load_ext unsloth_nb"
        )
        run_cell(client, setup)
        magic = run_cell_async(
            client,
            f"%unsloth_train --model {{MODEL}} --dataset {demo_dataset_path()} --max-steps 2 --warmup-steps 1 "
            "--max-seq-length 512 --placement local -o job",
        )
        waiting = run_cell_async(client, "job.wait(); print('waited')")
        streams = collect_until_idle(client, waiting)
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)

    by_cell = {magic: "", waiting: ""}
    for parent, text in streams:
        by_cell[parent] = by_cell.get(parent, "") + text
    assert "Unsloth" not in by_cell[magic], by_cell[magic]
    assert by_cell[waiting].strip() == "waited"
    (job,) = list_jobs()
    captured = (jobs_root() / job.id / "output.log").read_text()
    assert "Unsloth" in captured  # printed by the training thread, kept in the job folder


def run_cell_async(client: Any, code: str) -> str:
    return client.execute(code, store_history=False)


def run_cell(client: Any, code: str) -> None:
    reply = client.execute_interactive(code, timeout=300, output_hook=lambda _msg: None)
    assert reply["content"]["status"] == "ok", reply["content"]


def collect_until_idle(client: Any, last: str, timeout: float = 300.0) -> list[tuple[str, str]]:
    """(parent msg id, text) of every stream message until the cell ``last`` is done."""
    import queue

    streams: list[tuple[str, str]] = []
    while True:
        try:
            msg = client.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            raise AssertionError("the kernel went quiet before the cell finished") from None
        parent = msg["parent_header"].get("msg_id", "")
        if msg["msg_type"] == "stream":
            streams.append((parent, msg["content"]["text"]))
        elif msg["msg_type"] == "error":
            raise AssertionError(f"{msg['content']['ename']}: {msg['content']['evalue']}")
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle" and parent == last:
            return streams


def test_runpod_notebook_trains_on_an_emulated_pod_and_serverless_serves_and_leaves_nothing_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)  # the notebook must say it uses the emulator
    notebook = execute("03_runpod.ipynb", tmp_path, monkeypatch)

    assert errors(notebook) == []
    jobs = {job.placement: job for job in list_jobs()}
    assert sorted(jobs) == ["runpod", "serverless"]
    job = jobs["runpod"]
    assert (job.state, job.placement) == ("succeeded", "runpod") and job.pod_id
    assert jobs["serverless"].state == "succeeded"
    said = "".join(o.get("text", "") for o in outputs(cell_with(notebook, "RunPodEmulator(")))
    assert "uses the RunPod EMULATOR" in said and "nothing is billed" in said
    assert displayed(cell_with(notebook, "%unsloth_train"), WIDGET_VIEW), "the live view is missing"
    waited = "".join(o.get("text", "") for o in outputs(cell_with(notebook, "await job")))
    assert waited.startswith("succeeded") and f"pod {job.pod_id}" in waited
    listing = "".join(o.get("text", "") for o in outputs(cell_with(notebook, 'runpod(["list"]);')))
    assert "no pods" in listing
    bill = "".join(o.get("text", "") for o in outputs(cell_with(notebook, "emulator.ledger")))
    assert "emulated pods still running: none" in bill
    assert "serverless workers still running: none" in bill
    serving = "".join(o.get("text", "") for o in outputs(cell_with(notebook, "job.serve(")))
    assert "/openai/v1" in serving and "fine-tune:" in serving and "base:" in serving


def test_evaluate_tutorial_judges_the_fine_tune_and_reruns_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    notebook = execute("04_evaluate.ipynb", tmp_path, monkeypatch)

    assert errors(notebook) == []
    note = "".join(o.get("text", "") for o in outputs(cell_with(notebook, "judge_settings()")))
    assert "offline judge of the tests" in note  # says so when no key is set
    jobs = list_jobs()
    assert [job.state for job in jobs] == ["succeeded"]
    summary = "".join(o.get("text", "") for o in outputs(cell_with(notebook, "report.summary_lines()")))
    assert "wins" in summary and "win rate" in summary and "offline-key-facts-judge" in summary
    table = "".join(displayed(cell_with(notebook, "report.table["), "text/html"))
    assert "<table" in table and "outcome" in table
    again = "".join(o.get("text", "") for o in outputs(cell_with(notebook, "job.evaluate()")))
    assert "requests sent: 0" in again and "cost: $0.0000" in again


def test_from_unsloth_notebook_tutorial_pastes_imports_and_generates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = execute("06_from_unsloth_notebook.ipynb", tmp_path, monkeypatch)

    assert errors(notebook) == []
    (job,) = list_jobs()
    assert job.state == "succeeded"
    pasted = cell_with(notebook, "%%unsloth_train")
    said = "".join(o.get("text", "") for o in outputs(pasted))
    assert "Imported the pasted notebook cells." in said
    assert "3 save/export option(s) the notebook offers but does not run" in said  # its `if False:` cells
    assert not [name for name in job.artifacts if name.startswith(("gguf", "merged"))]  # listed, not turned on
    assert displayed(pasted, WIDGET_VIEW), "the live view is missing"
    yaml_text = "".join(o.get("text", "") for o in outputs(cell_with(notebook, "import_file(")))
    assert "chat_template: llama-3.1" in yaml_text and "  path: mlabonne/FineTome-100k\n" in yaml_text
    plan = "".join(o.get("text", "") for o in outputs(cell_with(notebook, "--from my_unsloth_notebook.ipynb")))
    assert "Plan: unsloth/Llama-3.2-3B-Instruct" in plan
    assert "save.gguf: [q4_k_m], hub.repo_id: HF_USERNAME/llama_finetune, hub.push: [gguf]" in yaml_text
    exported = "".join(o.get("text", "") for o in outputs(cell_with(notebook, "exported = import_file(")))
    assert "save: {'output_dir': 'outputs', 'gguf': ['q4_k_m']}" in exported
    assert "hub:  {'repo_id': 'HF_USERNAME/llama_finetune', 'push': ['gguf']}" in exported
    gguf_plan = "".join(o.get("text", "") for o in outputs(cell_with(notebook, "--from my_gguf_notebook.ipynb")))
    assert "Plan: unsloth/Llama-3.2-3B-Instruct" in gguf_plan and "GGUF export 9" in gguf_plan
    assert "pushes gguf to HF_USERNAME/llama_finetune on the Hub" in gguf_plan
    assert all("YOUR_HF_TOKEN" not in str(outputs(c)) for c in notebook.cells)  # the token argument is never copied
    chat = "".join(o.get("text", "") for o in outputs(cell_with(notebook, "job.chat(")))
    assert "temperature=1.5, min_p=0.1" in chat and "sampled:" in chat and "greedy: " in chat


def test_hub_datasets_notebook_trains_from_a_dataset_id_and_mixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = execute("05_hub_datasets.ipynb", tmp_path, monkeypatch)

    assert errors(notebook) == []
    assert [job.state for job in list_jobs()] == ["succeeded"]
    waited = "".join(o.get("text", "") for o in outputs(cell_with(notebook, "await job")))
    assert waited.startswith("succeeded")
    assert "hf://datasets/demo/superbowl-qa: Hub dataset" in waited
    mixed = "".join(o.get("text", "") for o in outputs(cell_with(notebook, "format_summary(mixed.summary)")))
    assert "mix: demo/superbowl-qa:" in mixed and "mix: extra.jsonl:" in mixed
def test_teacher_tutorial_enhances_reviews_trains_and_judges_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("UNSLOTH_NB_LLM_CACHE", str(tmp_path / "llm-cache"))
    notebook = execute("07_teacher.ipynb", tmp_path, monkeypatch)

    assert errors(notebook) == []
    note = "".join(o.get("text", "") for o in outputs(cell_with(notebook, "teacher_settings()")))
    assert "offline scripted teacher" in note and "offline judge" in note  # says so when no key is set
    review = "".join(displayed(cell_with(notebook, "outcome.review("), "text/html"))
    assert "<table" in review and "<ins" in review
    assert (tmp_path / "notebooks" / "superbowl.enhanced.jsonl").is_file()
    jobs = list_jobs()
    assert [job.state for job in jobs] == ["succeeded"]
    printed = "".join(o.get("text", "") for o in outputs(cell_with(notebook, "await job")))
    assert "trained on 600 rows" in printed and "win rate" in printed
