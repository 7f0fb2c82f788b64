"""Every bad input is refused before anything starts, in words that say what to change.

Each case of the corpus (bad_input_cases.py) is tried three ways, and a fourth:

- the CLI, in this process: exit code 2, a short message on stderr that names the
  ``file:line``, the field or the variable, and no traceback;
- the TrainingPanel: the same message in its error line (and at the field when there is
  one), and no job;
- the CLI in a fresh process: the same answer, with none of the training stack
  (torch, unsloth, transformers, ...) imported, so nothing heavy even began;
- ``%unsloth_train`` with the same flags: the cell fails with the message alone.

Nothing started means: no job folder under UNSLOTH_NB_HOME and, for a job that would rent
a GPU, no pod in the RunPod emulator's ledger.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bad_input_cases import BAD_DATA, CASES, MODEL_2K, BadInput, fill
from remote_stores import remote_places

from unsloth_nb import cli
from unsloth_nb.demo import demo_dataset_path
from unsloth_nb.jobrun.store import jobs_root

#: Modules whose import means training machinery began to load.
TRAINING_STACK = ("torch", "unsloth", "transformers", "trl", "peft", "datasets", "runpod")

#: A message a user reads in one glance: a DatasetError shows at most 5 problems, a count and a hint.
MAX_MESSAGE_LINES = 8


def places_for(tmp: Path) -> dict[str, str]:
    places = {"bad": str(BAD_DATA), "model": str(MODEL_2K), "good": str(demo_dataset_path()), "tmp": str(tmp)}
    return {**places, **remote_places()}


def write_files(case: BadInput, tmp: Path) -> None:
    for name, text in case.files.items():
        (tmp / name).write_text(text, encoding="utf-8")


def apply_env(case: BadInput, places: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in case.env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, fill(value, places))


def job_folders() -> list[str]:
    root = jobs_root()
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def flat(text: str) -> str:
    return " ".join(text.split())


def assert_says(text: str, case: BadInput, front_end: str = "cli") -> None:
    for fragment in case.expected(front_end):
        assert flat(fragment) in flat(text), f"{case.id}: the answer does not mention {fragment!r}:\n{text}"
    for secret in case.never_says:
        assert secret not in text, f"{case.id}: the answer repeats a value it should not"


def assert_short_cli_answer(code: Any, stderr: str, case: BadInput) -> None:
    assert code == cli.EXIT_BAD_INPUT, f"{case.id}: exit {code}, stderr:\n{stderr}"
    assert stderr.startswith("unsloth-nb: "), stderr
    assert "Traceback" not in stderr, stderr
    assert len(stderr.strip().splitlines()) <= MAX_MESSAGE_LINES, stderr
    assert_says(stderr, case, "cli")


# ---------------------------------------------------------------------- the CLI, in this process
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_cli_exits_2_with_a_message_that_says_what_to_change(
    case: BadInput,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    emulator = request.getfixturevalue("runpod_emulator") if case.runpod else None
    places = places_for(tmp_path)
    write_files(case, tmp_path)
    apply_env(case, places, monkeypatch)

    code = cli.main(case.argv(places))

    captured = capsys.readouterr()
    assert_short_cli_answer(code, captured.err, case)
    assert captured.out == ""
    assert job_folders() == []
    if emulator is not None:
        assert emulator.ledger.pod_ids() == [] and emulator.pods == {}


# ---------------------------------------------------------------------- the panel
def panel_text(panel: Any) -> str:
    """What the form shows: its message line, the dataset preview, the plan and every field's error."""
    parts = [panel.message_html.value, panel.preview_html.value, panel.plan_html.value]
    parts += [item.error.value for item in panel.fields.values()]
    return html.unescape(re.sub(r"<[^>]+>", " ", "\n".join(parts)))


def fill_form(panel: Any, argv: list[str]) -> None:
    """Type each flag's value into its field, as a user would (the last value of a flag wins)."""
    from unsloth_nb.config import field_specs

    path_of = {spec.flag: spec.path for spec in field_specs() if spec.flag}
    flags = argv[1:]
    for flag, value in zip(flags[::2], flags[1::2], strict=True):
        path = path_of[flag]
        if path == "placement":
            panel.placement.value = value
        else:
            panel.fields[path].widget.value = value


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES if c.panel])
def test_panel_shows_the_message_and_starts_no_job(
    case: BadInput, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    from unsloth_nb.ui.panel import TrainingPanel

    emulator = request.getfixturevalue("runpod_emulator") if case.runpod else None
    places = places_for(tmp_path)
    write_files(case, tmp_path)
    apply_env(case, places, monkeypatch)
    panel = TrainingPanel(base_dir=tmp_path)
    fill_form(panel, case.argv(places))

    assert panel.start() is None

    assert panel.job is None and panel.view is None and panel.confirm_box.children == ()
    assert "color:#cf222e" in panel.message_html.value, f"{case.id}: no error line in the panel"
    shown = panel_text(panel)
    says = [s for s in case.expected("panel") if not re.fullmatch(r"[a-z_]+\.[a-z_]+(\[\d+\])?", s)]  # shown by place
    assert_says(shown, BadInput(case.id, case.flags, tuple(says), never_says=case.never_says), "panel")
    flags = sorted({flag for flag in re.findall(r"--[a-z][a-z0-9-]+", shown)})
    assert not flags, f"{case.id}: the form speaks of command-line flags {flags} instead of its own fields:\n{shown}"
    assert "enter it when prompted" not in shown
    if case.form_field is not None:
        assert case.form_field in panel.errors, f"{case.id}: {case.form_field} is not marked: {panel.errors}"
    assert job_folders() == []
    if emulator is not None:
        assert emulator.ledger.pod_ids() == [] and emulator.pods == {}


# ---------------------------------------------------------------------- the magic
@pytest.fixture(scope="module")
def ipython() -> Any:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "unsloth_nb")
    return shell


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_the_magic_shows_the_message_without_a_traceback(
    case: BadInput, ipython: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """``%unsloth_train`` with the same flags: the cell fails with the message alone and starts nothing."""
    import shlex

    from IPython.utils.capture import capture_output

    emulator = request.getfixturevalue("runpod_emulator") if case.runpod else None
    places = places_for(tmp_path)
    write_files(case, tmp_path)
    apply_env(case, places, monkeypatch)

    with capture_output() as captured:
        result = ipython.run_cell("%unsloth_train " + shlex.join(case.argv(places)[1:]) + " -o job")

    shown = captured.stdout + captured.stderr + "".join(str(o.data.get("text/plain", "")) for o in captured.outputs)
    assert not result.success and "Traceback" not in shown, shown
    assert_says(shown, case, "magic")
    assert "see --help" not in shown and "unsloth-nb train --help" not in shown
    assert "job" not in ipython.user_ns
    assert job_folders() == []
    if emulator is not None:
        assert emulator.ledger.pod_ids() == [] and emulator.pods == {}


# ---------------------------------------------------------------------- the CLI, in a fresh process
CLI_RUNNER = r"""
import contextlib, io, json, os, sys
from pathlib import Path

stack = json.loads(sys.argv[1])
cases = json.loads(sys.stdin.read())
jobs = Path(os.environ["UNSLOTH_NB_HOME"]) / "jobs"
from unsloth_nb import cli

results = {}
for case in cases:
    saved = {name: os.environ.get(name) for name in case["env"]}
    for name, value in case["env"].items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(case["argv"])
    except BaseException as exc:  # report it as this case's answer and go on with the rest
        code = f"raised {type(exc).__name__}: {exc}"
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    results[case["id"]] = {
        "code": code,
        "stdout": out.getvalue(),
        "stderr": err.getvalue(),
        "loaded": [m for m in stack if m in sys.modules],
        "jobs": sorted(p.name for p in jobs.iterdir()) if jobs.is_dir() else [],
    }
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def fresh_process_answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every case through ``cli.main`` in one new interpreter (cases run in order, training stack checked after each)."""
    tmp = tmp_path_factory.mktemp("bad-inputs-process")
    places = places_for(tmp)
    payload = []
    for case in CASES:
        write_files(case, tmp)
        env = {name: (fill(value, places) if value is not None else None) for name, value in case.env.items()}
        payload.append({"id": case.id, "argv": case.argv(places), "env": env})
    env = {**os.environ, "UNSLOTH_NB_HOME": str(tmp / "home"), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-c", CLI_RUNNER, json.dumps(TRAINING_STACK)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_a_fresh_process_refuses_it_without_loading_the_training_stack(
    case: BadInput, fresh_process_answers: dict[str, dict[str, Any]]
) -> None:
    answer = fresh_process_answers[case.id]
    assert_short_cli_answer(answer["code"], answer["stderr"], case)
    assert answer["stdout"] == ""
    assert answer["loaded"] == [], f"{case.id} loaded {answer['loaded']} before refusing"
    assert answer["jobs"] == []


def test_the_installed_command_exits_2_on_a_bad_dataset(tmp_path: Path) -> None:
    """The real entry point, as a shell runs it: exit status 2 and one message, no traceback."""
    command = Path(sys.executable).with_name("unsloth-nb")
    argv = [str(command)] if command.exists() else [sys.executable, "-m", "unsloth_nb.cli"]
    bad = BAD_DATA / "malformed_json.jsonl"
    done = subprocess.run(
        [*argv, "train", "--model", str(MODEL_2K), "--dataset", str(bad), "--placement", "local"],
        capture_output=True,
        text=True,
        env={**os.environ, "UNSLOTH_NB_HOME": str(tmp_path / "home")},
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"unsloth-nb: {bad}: 1 of 4 rows cannot be used:")
    assert f"{bad}:3: not valid JSON" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "home" / "jobs").exists()


def test_the_corpus_covers_what_the_issue_lists() -> None:
    """At least 20 cases, and each kind of mistake the issue names is among them."""
    ids = {case.id for case in CASES}
    assert len(ids) == len(CASES) >= 20
    for needed in (
        "data-malformed-json",
        "data-latin1",
        "data-empty",
        "data-missing-column",
        "data-mixed-formats",
        "data-empty-messages",
        "data-no-assistant",
        "data-overlong-row",
        "data-path-does-not-exist",
        "model-path-does-not-exist",
        "hub-model-not-cached-offline",
        "negative-lr",
        "lora-r-zero",
        "seq-length-too-large-for-the-model",
        "runpod-without-a-key",
        "hub-push-without-hf-token",
    ):
        assert needed in ids
    committed = {p.name for p in BAD_DATA.iterdir() if p.is_file()}
    used = {arg.rsplit("/", 1)[-1] for case in CASES for arg in case.flags if arg.startswith("{bad}/")}
    assert committed <= used | {"README.md"}, f"files in tests/data/bad no case uses: {committed - used}"
