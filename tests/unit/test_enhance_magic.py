"""%unsloth_enhance and %%unsloth_enhance in an in-process IPython shell, against the loopback fake Anthropic API."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from unsloth_nb.testing.fake_anthropic import FakeAnthropic
from unsloth_nb.testing.fake_teacher import teacher

QA = [
    ("Who won Super Bowl LIX?", "The Philadelphia Eagles won 40-22."),
    ("Where was Super Bowl LIX played?", "At the Caesars Superdome in New Orleans."),
    ("Who was the MVP of Super Bowl LIX?", "Jalen Hurts was the MVP."),
]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeAnthropic]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", FakeAnthropic.api_key)
    monkeypatch.setenv("UNSLOTH_NB_LLM_CACHE", str(tmp_path / "cache"))
    with FakeAnthropic(teacher()) as server:
        yield server


@pytest.fixture
def ip() -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "unsloth_nb")
    yield shell
    shell.user_ns.pop("enhanced", None)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in QA), encoding="utf-8")
    return path


def run(ip: InteractiveShell, source: str) -> tuple[bool, str]:
    with capture_output() as captured:
        result = ip.run_cell(source)
    displayed = "".join(str(output.data.get("text/plain", "")) for output in captured.outputs)
    return result.success, captured.stdout + captured.stderr + displayed


def test_load_ext_registers_the_enhance_magic_without_the_sdks() -> None:
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'unsloth_nb')\n"
        "assert 'unsloth_enhance' in ip.magics_manager.magics['line']\n"
        "assert 'unsloth_enhance' in ip.magics_manager.magics['cell']\n"
        "heavy = [m for m in ('torch', 'anthropic', 'openai', 'datasets') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "ip.run_line_magic('unload_ext', 'unsloth_nb')\n"
        "assert 'unsloth_enhance' not in ip.magics_manager.magics['line']\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_line_magic_enhances_keeps_the_outcome_and_shows_the_review(
    ip: InteractiveShell, fake: FakeAnthropic, data: Path
) -> None:
    before = data.read_text()
    ok, out = run(
        ip, f"%unsloth_enhance {data} --teacher-base-url {fake.base_url} --teacher-batch off --yes --review 2 -o enhanced"
    )
    assert ok, out
    assert data.read_text() == before
    outcome = ip.user_ns["enhanced"]
    assert outcome.status == "complete" and outcome.path == data.with_name("qa.enhanced.jsonl")
    assert len(outcome.path.read_text().splitlines()) == 3 * len(QA)  # improved + 2 paraphrases each
    assert "Teacher: 6 requests" in out and "teacher: 3 rows -> 9 training rows" in out and "Wrote " in out
    assert "before" in out.lower()  # the review table's text form
    assert fake.calls == 6


def test_the_cell_gives_teacher_fields_and_the_line_overrides_them(ip: InteractiveShell, fake: FakeAnthropic, data: Path) -> None:
    out_file = data.with_name("better.jsonl")
    cell = f"teacher:\n  base_url: {fake.base_url}\n  batch: 'off'\n  operations: [improve, paraphrase]\n  paraphrases: 3\n"
    ok, out = run(ip, f"%%unsloth_enhance {data} --out {out_file} --teacher-paraphrases 1 --yes -o enhanced\n{cell}")
    assert ok, out
    assert len(out_file.read_text().splitlines()) == 2 * len(QA)  # the line's 1 paraphrase, not the cell's 3


def test_above_the_threshold_nothing_is_sent_until_yes(ip: InteractiveShell, fake: FakeAnthropic, data: Path) -> None:
    flags = f"{data} --teacher-base-url {fake.base_url} --teacher-batch off --teacher-confirm-above 0"
    ok, out = run(ip, f"%unsloth_enhance {flags}")
    assert not ok and "re-run the cell with --yes" in out and "Traceback" not in out
    assert fake.calls == 0 and not data.with_name("qa.enhanced.jsonl").exists()
    ok, out = run(ip, f"%unsloth_enhance {flags} --yes")
    assert ok, out


def test_mistakes_are_one_line_each(ip: InteractiveShell, fake: FakeAnthropic, data: Path) -> None:
    ok, out = run(ip, f"%%unsloth_enhance {data} --yes\nparaphrases: -2\n")
    assert not ok and "teacher.paraphrases" in out and "Traceback" not in out
    ok, out = run(ip, f"%%unsloth_enhance {data}\n- not a mapping\n")
    assert not ok and "mapping of teacher: fields" in out
    ok, out = run(ip, f"%unsloth_enhance {data} --out {data} --yes --teacher-base-url {fake.base_url}")
    assert not ok and "never overwrites" in out
    assert fake.calls == 0
