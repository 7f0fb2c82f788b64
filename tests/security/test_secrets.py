"""No secret from the environment ends up anywhere a user could share or a log could keep.

With distinctive fake values for HF_TOKEN, RUNPOD_API_KEY, ANTHROPIC_API_KEY and
OPENAI_API_KEY in the environment, this runs what users run:

- a local job from the CLI (``unsloth-nb train``),
- a RunPod job from the CLI (``unsloth-nb runpod train --yes``) against the RunPod
  emulator, which here accepts only our fake account key (so the key really is used),
- the quickstart tutorial, executed in a real kernel with nbclient and saved with its
  widget state, as a user's notebook would be saved,

then reads every file they produced (job folders with configs, plans, events and logs,
the adapters, the pod's home folder and log in the emulator, the executed notebook, the
kernel's working folder) and everything the CLI printed, and finds none of the values,
neither as written nor in base64. No pod's env (which RunPod lets anyone with the account
key read back) holds a user secret: the Hugging Face token travels in the authenticated
job request, and the account key and the unrelated keys never reach a pod.

The panel half: a key typed into the password prompt of ``TrainingPanel.ask_secrets``
lands in the kernel's environment and in no widget's state.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from fixtures import SMOLLM2_135M, judge_requests, model_folder
from nbclient import NotebookClient

from unsloth_nb import cli
from unsloth_nb.demo import demo_dataset_path
from unsloth_nb.jobrun.store import list_jobs
from unsloth_nb.testing.runpod_emulator import RunPodEmulator

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

#: Fake keys, built by joining parts so that this file holds nothing shaped like a real key.
FAKE_SECRETS = {
    "HF_TOKEN": "hf_" + "FAKEfakeFAKE" + "UnslothNbSecurityTest" + "0123456789",
    "RUNPOD_API_KEY": "rpa_" + "FAKEfakeFAKE" + "UnslothNbSecurityTest" + "9876543210",
    "ANTHROPIC_API_KEY": "sk-" + "ant-" + "api03-" + "FAKEfakeFAKE-unslothnb-security-test-" + "1357924680",
    "OPENAI_API_KEY": "sk-" + "proj-" + "FAKEfakeFAKE" + "UnslothNbSecurityTest" + "2468013579",
}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


# ---------------------------------------------------------------------- searching
def encoded_forms(secret: str) -> dict[str, bytes]:
    """The secret as written, and the part of its base64 that shows whatever bytes come before it.

    A value inside a larger base64 blob lines up with the 3-byte groups in one of three
    ways; for each, the characters that depend only on the secret's own bytes are searched.
    """
    raw = secret.encode()
    forms = {"plain": raw}
    for shift in range(3):
        total_bits = 8 * (shift + len(raw))
        first = -(-8 * shift // 6)  # the first character that no padding byte feeds
        last = total_bits // 6  # characters after this mix in what follows the secret
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            forms[f"{name}+{shift}"] = encode(b"\0" * shift + raw)[first:last]
    return forms


def leaks_in(data: bytes) -> list[str]:
    return [
        f"{variable} ({form})"
        for variable, secret in FAKE_SECRETS.items()
        for form, needle in encoded_forms(secret).items()
        if needle in data
    ]


def scan(roots: list[Path]) -> tuple[int, list[str]]:
    """(files read, 'path: what was found' for each file or file name holding a secret)."""
    seen: set[Path] = set()
    findings: list[str] = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_symlink() or not path.is_file() or path in seen:
                continue
            seen.add(path)
            found = leaks_in(str(path).encode()) + leaks_in(path.read_bytes())
            if found:
                findings.append(f"{path}: {', '.join(sorted(set(found)))}")
    return len(seen), findings


def test_the_search_finds_a_secret_in_each_form_it_looks_for() -> None:
    """The scan's own check: plain, base64 and URL-safe base64 at every alignment are caught."""
    secret = FAKE_SECRETS["OPENAI_API_KEY"]
    for prefix in (b"", b"a", b"ab", b"abc"):
        blob = prefix + b'{"env": "' + secret.encode() + b'"}'
        assert leaks_in(base64.b64encode(blob)), prefix
        assert leaks_in(base64.urlsafe_b64encode(blob)), prefix
    assert leaks_in(f"key={secret}".encode()) == ["OPENAI_API_KEY (plain)"]
    assert leaks_in(b"nothing to see") == []


# ---------------------------------------------------------------------- fixtures
@pytest.fixture
def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunPodEmulator]:
    """A RunPod emulator that accepts our fake account key and no other (the shared fixture has its own key)."""
    import runpod

    with RunPodEmulator(
        start_delay=0.2,
        api_key=FAKE_SECRETS["RUNPOD_API_KEY"],
        workdir=tmp_path / "runpod-emulator",
        restart_delay=0.2,
        stop_grace_s=2.0,
    ) as running:
        monkeypatch.setenv("RUNPOD_API_BASE_URL", running.api_base_url)
        monkeypatch.setenv("UNSLOTH_NB_RUNPOD_PROXY_TEMPLATE", running.proxy_url_template)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
        # The client sets the SDK's module-level key; restore it so later tests do not inherit ours.
        monkeypatch.setattr(runpod, "api_key", None)
        yield running
        billing = running.ledger.running_pods()
    assert billing == [], f"pods still billing: {billing}"


class PodWatcher:
    """Keeps the last view of every pod while it exists (terminated pods vanish from the API)."""

    def __init__(self, emulator: RunPodEmulator) -> None:
        self.emulator = emulator
        self.pods: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PodWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.pods.update(self.emulator.pods)
            time.sleep(0.05)


def execute_quickstart(workdir: Path) -> Path:
    """Run 01_quickstart as CI does (tiny model), keep the widget state, save it as a user would."""
    notebook = nbformat.read(workdir / "01_quickstart.ipynb", as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
        store_widget_state=True,
    )
    client.execute()
    saved = workdir / "01_quickstart.executed.ipynb"
    nbformat.write(notebook, saved)
    return saved


# ---------------------------------------------------------------------- the runs
def test_no_secret_reaches_a_file_a_log_a_notebook_or_the_terminal(
    tiny_model: Path,
    emulator: RunPodEmulator,
    tmp_path: Path,
    job_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    import shutil

    for variable, value in FAKE_SECRETS.items():
        monkeypatch.setenv(variable, value)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)  # anything written relative to the working folder is searched too
    flags = ["--model", str(tiny_model), "--dataset", str(demo_dataset_path()), "--max-steps", "2", "--batch-size", "2"]
    flags += ["--grad-accum", "1", "--max-seq-length", "512", "--lora-r", "8", "--warmup-steps", "0"]
    printed: list[str] = []

    assert cli.main(["train", *flags, "--placement", "local"]) == 0
    out = capfd.readouterr()
    printed += [out.out, out.err]

    with PodWatcher(emulator) as watcher:
        code = cli.main(["runpod", "train", *flags, "--yes"])
    out = capfd.readouterr()
    printed += [out.out, out.err]
    assert code == 0, out.err[-3000:]

    # Pod env can be read back through RunPod's API and console: the emulator's record of every pod's env
    # (and of everything else it was created with) holds none of the user's secrets, in any encoding.
    # HF_TOKEN went in the authenticated job request instead, and the job token is the only credential there.
    (pod,) = watcher.pods.values()
    assert leaks_in(json.dumps(pod.env).encode()) == [], "a user secret is in the pod's env"
    assert "HF_TOKEN" not in pod.env and {"UNSLOTH_NB_WORKER_TOKEN", "UNSLOTH_NB_BOOT"} <= set(pod.env)
    whole_record = json.dumps({k: str(v) for k, v in vars(pod).items()})
    assert leaks_in(whole_record.encode()) == [], "a secret reached the pod's record"
    assert emulator.ledger.running_pods() == []

    notebooks = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, notebooks)
    monkeypatch.setenv("UNSLOTH_NB_TUTORIAL_MODEL", "tiny")
    executed = execute_quickstart(notebooks)
    out = capfd.readouterr()
    printed += [out.out, out.err]

    # All three ran for real, and the notebook was saved with its widgets' state.
    assert sorted(job.state for job in list_jobs()) == ["succeeded"] * 3
    saved = json.loads(executed.read_text(encoding="utf-8"))
    assert saved["metadata"]["widgets"][WIDGET_STATE]["state"], "no widget state was saved"

    # What is searched holds what the runs wrote: three job folders, the pod's home and log, the saved notebook.
    for job in list_jobs():
        folder = job_home / "jobs" / job.id
        assert {"job.json", "config.json", "plan.json", "events.jsonl"} <= {p.name for p in folder.iterdir()}
    assert (emulator.workdir / "pods" / pod.id / "unsloth-nb-worker" / "events.jsonl").is_file()
    assert (emulator.workdir / "logs" / f"{pod.id}.log").stat().st_size > 0
    assert emulator.workdir.is_relative_to(tmp_path) and executed.is_relative_to(tmp_path)

    files, findings = scan([job_home, tmp_path])
    assert files > 50, f"only {files} files were searched"
    terminal = "\n".join(printed)
    assert "succeeded" in terminal
    findings += [f"CLI output: {leak}" for leak in leaks_in(terminal.encode())]
    assert findings == [], "secrets found:\n" + "\n".join(findings)


def test_a_key_typed_into_the_panels_prompt_stays_out_of_every_widget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ask_secrets is the panel's way to take a key: getpass in, the kernel's environment out, no widget."""
    import getpass
    import io

    from ipywidgets.widgets.widget import _instances as every_widget

    from unsloth_nb.ui.panel import TrainingPanel

    model = model_folder(tmp_path, "model", SMOLLM2_135M)
    for variable in ("HF_TOKEN", "RUNPOD_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    typed = {"HF_TOKEN": FAKE_SECRETS["HF_TOKEN"], "RUNPOD_API_KEY": FAKE_SECRETS["RUNPOD_API_KEY"]}
    asked: list[str] = []

    def typed_in(prompt: str = "", stream: Any = None) -> str:
        variable = prompt.split(" ", 1)[0]
        asked.append(variable)
        return typed[variable]

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(getpass, "getpass", typed_in)  # the person at the keyboard
    monkeypatch.setattr("sys.stdin", Terminal())

    panel = TrainingPanel(
        model=str(model),
        dataset=str(demo_dataset_path()),
        base_dir=tmp_path,
        placement="runpod",
        hub__repo_id="someone/support-lora",
        train__max_seq_length=512,
        runpod__confirm_above_usd=0,  # always ask: this test must rent nothing
    )
    assert panel.ask_secrets() == ["HF_TOKEN", "RUNPOD_API_KEY"] == asked
    assert panel.start() is None  # the keys are found; the rental waits for confirmation
    assert panel.confirm_box.children, panel.message_html.value

    assert os.environ["HF_TOKEN"] == typed["HF_TOKEN"]
    states = [widget.get_state() for widget in list(every_widget.values())]  # every widget in this process
    dumped = json.dumps(states, default=str).encode()
    assert len(states) > 50
    assert leaks_in(dumped) == []
    assert "Password" not in {state.get("_model_name") for state in states}


def test_the_judges_key_is_used_on_this_machine_and_stored_nowhere(
    tiny_model: Path, tmp_path: Path, job_home: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A judged job, then ``unsloth-nb eval`` with the Anthropic judge: both fakes saw the real (fake) keys, and no
    file (job folder, report, answers, the judge's cache) nor the terminal holds any key."""
    from unsloth_nb.llm import default_cache_dir
    from unsloth_nb.testing.fake_anthropic import FakeAnthropic
    from unsloth_nb.testing.fake_llm import picks_first
    from unsloth_nb.testing.fake_openai import FakeOpenAI

    for variable, value in FAKE_SECRETS.items():
        monkeypatch.setenv(variable, value)
    evaluation = Path(demo_dataset_path()).with_name("superbowl_eval.jsonl")
    with FakeOpenAI(picks_first()) as openai_fake, FakeAnthropic(picks_first()) as anthropic_fake:
        flags = ["--model", str(tiny_model), "--dataset", str(demo_dataset_path()), "--max-steps", "1", "--batch-size", "2"]
        flags += ["--grad-accum", "1", "--max-seq-length", "512", "--warmup-steps", "0", "--placement", "local"]
        flags += ["--judge", "--judge-base-url", openai_fake.base_url, "--judge-eval", str(evaluation)]
        flags += ["--judge-max-questions", "2", "--judge-max-new-tokens", "4"]
        assert cli.main(["train", *flags, "--yes"]) == 0
        (job,) = list_jobs()
        assert (
            cli.main(
                [
                    "eval",
                    job.id,
                    "--json",
                    "--judge-provider",
                    "anthropic",
                    "--judge-model",
                    "claude-haiku-4-5",
                    "--judge-base-url",
                    anthropic_fake.base_url,
                ]
            )
            == 0
        )
        out = capfd.readouterr()
    from unsloth_nb.jobrun.controller import load_job

    sent = judge_requests(load_job(job.id, reattach=False))  # 4 (2 questions, both orders) unless two answers are the same
    assert openai_fake.calls == sent and anthropic_fake.calls == sent
    assert set(openai_fake.auth_headers) == {f"Bearer {FAKE_SECRETS['OPENAI_API_KEY']}"}
    assert set(anthropic_fake.auth_headers) == {FAKE_SECRETS["ANTHROPIC_API_KEY"]}
    assert (job_home / "jobs" / job.id / "evaluation.json").is_file()
    files, findings = scan([job_home, tmp_path, default_cache_dir()])
    assert files > 10
    findings += [f"CLI output: {leak}" for leak in leaks_in((out.out + out.err).encode())]
    assert findings == [], "secrets found:\n" + "\n".join(findings)


def test_the_teachers_key_is_used_on_this_machine_and_stored_nowhere(
    tiny_model: Path, tmp_path: Path, job_home: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A job with a teacher (live and batch requests) and a standalone ``unsloth-nb enhance``: the fake saw the key,
    and no file (job folder, enhanced set, provenance, card, batch record, the cache) nor the terminal holds it."""
    from unsloth_nb.llm import default_cache_dir
    from unsloth_nb.testing.fake_anthropic import FakeAnthropic
    from unsloth_nb.testing.fake_teacher import teacher

    for variable, value in FAKE_SECRETS.items():
        monkeypatch.setenv(variable, value)
    with FakeAnthropic(teacher()) as fake:
        flags = ["--model", str(tiny_model), "--dataset", str(demo_dataset_path()), "--max-steps", "1", "--batch-size", "2"]
        flags += ["--grad-accum", "1", "--max-seq-length", "512", "--warmup-steps", "0", "--placement", "local"]
        flags += ["--teacher-base-url", fake.base_url, "--teacher-ops", "improve", "--max-rows", "6", "--teacher-batch", "off"]
        assert cli.main(["train", *flags, "--yes"]) == 0
        data = tmp_path / "qa.jsonl"
        data.write_text('{"question": "Who won Super Bowl LIX?", "answer": "The Eagles won 40-22."}\n', encoding="utf-8")
        enhance = [
            "enhance",
            str(data),
            "--yes",
            "--teacher-base-url",
            fake.base_url,
            "--teacher-batch",
            "on",
            "--teacher-poll",
            "0",
        ]
        assert cli.main(enhance) == 0
        out = capfd.readouterr()
    assert fake.calls >= 6
    assert set(fake.auth_headers) == {FAKE_SECRETS["ANTHROPIC_API_KEY"]} and fake.batches_created == 1
    (job,) = list_jobs()
    assert (job_home / "jobs" / job.id / "teacher" / "enhanced.jsonl").is_file()
    files, findings = scan([job_home, tmp_path, default_cache_dir()])
    assert files > 10
    findings += [f"CLI output: {leak}" for leak in leaks_in((out.out + out.err).encode())]
    assert findings == [], "secrets found:\n" + "\n".join(findings)
