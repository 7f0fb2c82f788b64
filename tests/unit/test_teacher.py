"""The teacher against the loopback fake Anthropic API, spoken to by the unmodified ``anthropic`` SDK."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from unsloth_nb.config import DatasetConfig, TrainConfig
from unsloth_nb.data import prepare_dataset
from unsloth_nb.teacher.run import (
    CARD_FILE,
    PROVENANCE_FILE,
    TeacherError,
    build_tasks,
    enhance_rows,
    make_client,
)
from unsloth_nb.testing import fake_llm
from unsloth_nb.testing.fake_anthropic import FakeAnthropic
from unsloth_nb.testing.fake_teacher import LEADS, drops_numbers, empties, refuses, teacher

QA = [
    ("Who won Super Bowl LIX?", "The Philadelphia Eagles won 40-22."),
    ("Where was Super Bowl LIX played?", "At the Caesars Superdome in New Orleans."),
    ("Who was the MVP of Super Bowl LIX?", "Jalen Hurts was the MVP."),
    ("Who headlined the halftime show?", "Kendrick Lamar headlined it."),
    ("How many yards did Patrick Mahomes throw for?", "Patrick Mahomes threw for 257 yards."),
    ("When was Super Bowl LIX played?", "On February 9, 2025."),
]


def rows(n: int = len(QA)) -> list[dict]:
    return [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in QA[:n]]


def origins(n: int = len(QA)) -> list[str]:
    return [f"qa.jsonl:{i + 1}" for i in range(n)]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("ANTHROPIC_API_KEY", FakeAnthropic.api_key)
    monkeypatch.setenv("UNSLOTH_NB_LLM_CACHE", str(tmp_path / "cache"))
    with FakeAnthropic(teacher()) as server:
        yield server


def teacher_config(fake: FakeAnthropic, **fields: object):
    section = {"base_url": fake.base_url, "batch": "off", "poll_seconds": 0, **fields}
    return TrainConfig.from_dict({"model": "m", "dataset": "d.jsonl", "teacher": section}).teacher


def run(fake, folder: Path, n: int = len(QA), stop=lambda: False, heldout=(), **fields):
    config = teacher_config(fake, **fields)
    client = make_client(config, stop)
    client.backoff_base = 0.01
    return enhance_rows(rows(n), origins(n), config, folder, client=client, stop=stop, heldout_questions=heldout)


def test_improve_and_paraphrase_write_a_valid_dataset_with_provenance_and_a_card(fake, tmp_path: Path):
    outcome = run(fake, tmp_path / "job")
    assert outcome.status == "complete"
    assert fake.calls == 2 * len(QA)  # one improve and one paraphrase request per row
    assert len(outcome.rows) == len(QA) * 3  # each row and its two paraphrases
    assert outcome.counts["improved"] == len(QA) and outcome.counts["paraphrases"] == 2 * len(QA)
    assert outcome.rows[0]["messages"][1]["content"].endswith("That is the complete answer.")
    assert outcome.rows[1]["messages"][0]["content"] == LEADS[0] + QA[0][0]
    # the written file passes the same validation as a user's file
    prepared = prepare_dataset(DatasetConfig(path=str(outcome.path)), 512)
    assert len(prepared.train) == len(QA) * 3
    provenance = [json.loads(line) for line in ((tmp_path / "job") / PROVENANCE_FILE).read_text().splitlines()]
    assert len(provenance) == len(outcome.rows)
    assert provenance[0] == {
        "source": "qa.jsonl:1",
        "original_question": QA[0][0],
        "original_answer": QA[0][1],
        "model": "claude-sonnet-4-5",
        "operation": "improve",
    }
    assert provenance[1]["operation"] == "paraphrase+improve"
    card = json.loads(((tmp_path / "job") / CARD_FILE).read_text())
    assert card["teacher"] == {"provider": "anthropic", "model": "claude-sonnet-4-5"}
    assert len(card["prompts"]["improve"]["sha256_12"]) == 12
    assert card["cost"]["usd"] > 0
    assert FakeAnthropic.api_key not in json.dumps(card) + outcome.path.read_text()


def test_a_rerun_sends_nothing_again(fake, tmp_path: Path):
    run(fake, tmp_path / "a")
    calls = fake.calls
    again = run(fake, tmp_path / "b")
    assert fake.calls == calls
    assert again.spend["cache_hits"] == 2 * len(QA) and again.usd == 0
    assert len(again.rows) == len(QA) * 3


def test_a_run_killed_midway_resumes_without_repeating_a_finished_row(fake, tmp_path: Path):
    """Stop after 5 answers (as Ctrl-C or a dead kernel would): the re-run asks only for the rest."""
    answered = threading.Event()
    done = {"n": 0}

    def counting(call):
        done["n"] += 1
        if done["n"] >= 5:
            answered.set()
        return teacher()(call)

    fake.reset(counting)
    first = run(fake, tmp_path / "job", stop=answered.is_set, concurrency=1)
    assert first.status == "stopped" and first.not_done > 0
    asked_first = [json.dumps(body, sort_keys=True) for body in fake.requests]
    fake.reset(teacher())
    second = run(fake, tmp_path / "job", concurrency=1)
    assert second.status == "complete"
    asked_second = [json.dumps(body, sort_keys=True) for body in fake.requests]
    assert not set(asked_first) & set(asked_second), "a finished request was sent again"
    assert len(asked_first) + len(asked_second) == 2 * len(QA)


def test_429_with_retry_after_and_500s_are_retried(fake, tmp_path: Path):
    fake.reset(fake_llm.rate_limited(times=2, retry_after=0.2, then=fake_llm.server_error(times=4, then=teacher())))
    outcome = run(fake, tmp_path / "job")
    assert outcome.status == "complete"
    assert outcome.spend["rate_limited"] >= 1 and outcome.spend["retries"] >= 2
    assert len(outcome.rows) == len(QA) * 3


def test_timeouts_are_retried(fake, tmp_path: Path):
    fake.reset(fake_llm.slow(2.0, times=1, then=teacher()))
    outcome = run(fake, tmp_path / "job", timeout=1.0, concurrency=1, operations=["improve"])
    assert outcome.status == "complete" and outcome.spend["retries"] >= 1


def test_a_teacher_that_is_down_fails_with_a_message(fake, tmp_path: Path):
    fake.reset(fake_llm.server_error())
    config = teacher_config(fake)
    client = make_client(config)
    client.backoff_base, client.max_attempts = 0.01, 2
    with pytest.raises(TeacherError, match="unavailable"):
        enhance_rows(rows(), origins(), config, tmp_path, client=client)


def test_budget_reached_midway_stops_keeps_what_is_done_and_resumes(fake, tmp_path: Path):
    config = teacher_config(fake, max_new_tokens=32)  # estimates near what the fake's short answers cost
    tasks, _, _ = build_tasks(rows(), origins(), config)
    estimate = make_client(config).estimate_usd(tasks[0].request)
    capped = run(fake, tmp_path / "job", max_cost_usd=estimate * 4.5, concurrency=1, max_new_tokens=32)
    sent = fake.calls
    assert capped.status == "budget" and 0 < sent < 2 * len(QA) and capped.not_done == 2 * len(QA) - sent
    assert "teacher.max_cost_usd" in capped.message
    assert 0 < capped.usd <= estimate * 4.5  # the cap holds on actual usage
    assert len(capped.rows) >= len(QA)  # every user row is kept; unfinished ones unchanged
    fake.reset(teacher())
    finished = run(fake, tmp_path / "job", max_new_tokens=32)
    assert finished.status == "complete"
    assert fake.calls == 2 * len(QA) - sent  # nothing already paid for is asked again
    assert len(finished.rows) == len(QA) * 3


def test_refusals_empty_answers_and_dropped_facts_are_rejected_and_counted(fake, tmp_path: Path):
    fake.reset(refuses("MVP", then=empties("halftime", then=drops_numbers())))
    outcome = run(fake, tmp_path / "job")
    rejected = outcome.rejected
    assert rejected["improve:refusal"] == 1 and rejected["paraphrase:refusal"] == 1
    assert rejected["improve:empty"] == 1 and rejected["paraphrase:empty"] == 1
    # numbers dropped: the three answers holding digits (40-22, 257, February 9, 2025) are rejected
    assert rejected["improve:dropped_facts"] == 3
    by_question = {r["messages"][0]["content"]: r["messages"][1]["content"] for r in outcome.rows}
    assert by_question[QA[2][0]] == QA[2][1]  # a refusal leaves the user's answer
    assert by_question[QA[0][0]] == QA[0][1]  # so does a rewrite that lost "40-22"


def test_paraphrases_of_held_out_questions_never_reach_training(fake, tmp_path: Path):
    heldout = [LEADS[0] + QA[1][0]]  # the judge holds out a question that is a paraphrase of training row 1
    outcome = run(fake, tmp_path / "job", heldout=heldout)
    questions = [r["messages"][0]["content"] for r in outcome.rows]
    assert heldout[0] not in questions
    assert outcome.counts["dropped_heldout"] >= 1


def test_batch_mode_is_half_price_and_maps_results_back(fake, tmp_path: Path):
    live = run(fake, tmp_path / "live")
    fake.reset(teacher())
    batched = run(fake, tmp_path / "batch", batch="on", prices={"claude-sonnet-4-6": "3/15"}, model="claude-sonnet-4-6")
    assert fake.batches_created == 1 and fake.calls == 2 * len(QA)
    assert [r["messages"] for r in batched.rows] == [r["messages"] for r in live.rows]
    assert batched.usd == pytest.approx(live.usd / 2, rel=0.05)


def test_a_batch_survives_a_restart_and_is_never_resubmitted(fake, tmp_path: Path):
    fake.batch_polls_until_done = 3
    stop = threading.Event()
    calls = {"n": 0}

    def stop_after_submit() -> bool:  # a kernel that dies while the batch is running
        calls["n"] += 1
        return fake.__dict__.get("batches_created", 0) >= 1 and calls["n"] > 1

    first = run(fake, tmp_path / "job", batch="on", stop=stop_after_submit)
    assert first.status == "stopped" and fake.batches_created == 1
    assert json.loads(((tmp_path / "job") / "batch.json").read_text())["batch_id"]
    second = run(fake, tmp_path / "new-job", batch="on", stop=stop.is_set)  # a new job, after the kernel restarted
    assert second.status == "complete" and fake.batches_created == 1
    assert len(second.rows) == len(QA) * 3
    assert fake.calls == 2 * len(QA)  # each request answered once, in the one batch
    assert not list((tmp_path / "cache" / "batches").glob("*.json"))


def test_an_expired_batch_resubmits_only_the_unfinished_rows(fake, tmp_path: Path):
    fake.expire_next = 4
    outcome = run(fake, tmp_path / "job", batch="on")
    assert outcome.status == "complete"
    assert fake.batches_created == 2 and fake.batch_requests == 2 * len(QA) + 4
    assert fake.calls == 2 * len(QA)  # every request answered exactly once


def test_the_teacher_section_is_checked():
    with pytest.raises(Exception) as info:
        TrainConfig.from_dict(
            {"model": "m", "dataset": "d.jsonl", "teacher": {"operations": ["summarise"], "provider": "openai", "batch": "on"}}
        )
    text = str(info.value)
    assert "teacher.operations" in text and "teacher.batch" in text


# ---------------------------------------------------------------------------- standalone: API and CLI
def write_qa(path: Path) -> Path:
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in QA), encoding="utf-8")
    return path


def test_unsloth_nb_enhance_writes_a_new_file_and_a_heldout_set_it_never_paraphrases(fake, tmp_path: Path):
    import unsloth_nb

    data = write_qa(tmp_path / "qa.jsonl")
    before = data.read_text()
    outcome = unsloth_nb.enhance(data, base_url=fake.base_url, batch="off", holdout=2, yes=True)
    assert data.read_text() == before
    assert outcome.path == tmp_path / "qa.enhanced.jsonl" and outcome.status == "complete"
    heldout = [json.loads(line) for line in (tmp_path / "qa.enhanced.heldout.jsonl").read_text().splitlines()]
    assert len(heldout) == 2 and heldout[0]["messages"][-1]["role"] == "assistant"
    trained = {json.loads(line)["messages"][0]["content"] for line in outcome.path.read_text().splitlines()}
    for row in heldout:
        question = row["messages"][0]["content"]
        assert not any(question in q for q in trained)
    assert len(trained) == 3 * (len(QA) - 2)
    assert (tmp_path / "qa.enhanced.teacher" / CARD_FILE).is_file()


def test_the_estimate_above_the_threshold_is_asked_about_and_nothing_is_sent_without_yes(fake, tmp_path: Path):
    import unsloth_nb

    data = write_qa(tmp_path / "qa.jsonl")
    with pytest.raises(TeacherError, match=r"teacher\.confirm_above_usd"):
        unsloth_nb.enhance(data, base_url=fake.base_url, batch="off", confirm_above_usd=0)
    asked: list[str] = []
    with pytest.raises(TeacherError, match="declined"):
        unsloth_nb.enhance(
            data, base_url=fake.base_url, batch="off", confirm_above_usd=0, confirm=lambda q: asked.append(q) or False
        )
    assert fake.calls == 0
    assert asked and "12 requests to anthropic:claude-sonnet-4-5" in asked[0] and "$" in asked[0]


def test_the_cli_enhances_with_json_output_and_refuses_to_overwrite_the_input(
    fake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from unsloth_nb.cli import main

    data = write_qa(tmp_path / "qa.jsonl")
    out = tmp_path / "better.jsonl"
    code = main(
        [
            "enhance",
            str(data),
            "--out",
            str(out),
            "--yes",
            "--json",
            "--teacher-base-url",
            fake.base_url,
            "--teacher-batch",
            "off",
            "--teacher-ops",
            "improve",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "complete" and result["card"]["rows_out"] == len(QA) and out.is_file()
    assert main(["enhance", str(data), "--out", str(data), "--yes"]) == 1
    assert "never overwrites" in capsys.readouterr().err


def test_the_cli_runs_offline_with_the_fake_teacher_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from unsloth_nb.cli import main

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("UNSLOTH_NB_LLM_CACHE", str(tmp_path / "cache"))
    data = write_qa(tmp_path / "qa.jsonl")
    assert main(["enhance", str(data), "--fake", "--yes"]) == 0
    captured = capsys.readouterr()
    assert "offline fake teacher" in captured.err and "18 training rows" in captured.out


# ---------------------------------------------------------------------------- generate from documents
def tiny_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A real PDF built by hand (Helvetica text, one content stream per page) with a correct xref table."""
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    font = 3 + 2 * len(pages)
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    for i, lines in enumerate(pages):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        text = " ".join(f"({line}) Tj T*" for line in lines)
        stream = f"BT /F1 11 Tf 14 TL 72 720 Td {text} ET".encode()
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    body = b"%PDF-1.4\n"
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    body += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    body += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(body)
    return path


def test_generate_writes_grounded_rows_from_a_pdf_and_a_markdown_file_each_citing_its_chunk(fake, tmp_path: Path):
    pytest.importorskip("pypdf")
    from unsloth_nb.testing.fake_teacher import generator

    pdf = tiny_pdf(
        tmp_path / "report.pdf",
        [
            ["The Eagles beat the Chiefs 40-22 in Super Bowl LIX.", "Jalen Hurts was named MVP.", "He ran for 72 yards."],
            [
                "Kendrick Lamar headlined the halftime show.",
                "The game was played in New Orleans.",
                "It drew 127 million viewers.",
            ],
        ],
    )
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n\nThe Caesars Superdome seats 73208 people.\n\nIt opened in 1975.\n", encoding="utf-8")
    fake.reset(generator())
    outcome = run(
        fake,
        tmp_path / "job",
        n=2,
        operations=["generate"],
        documents=[str(pdf), str(notes)],
        questions_per_chunk=2,
        chunk_chars=200,
    )
    provenance = [json.loads(line) for line in (tmp_path / "job" / PROVENANCE_FILE).read_text().splitlines()]
    generated = [(row, where) for row, where in zip(outcome.rows, provenance, strict=True) if where["operation"] == "generate"]
    assert outcome.counts["generated"] == len(generated) >= 4
    cites = {where["source"] for _, where in generated}
    assert any(c.startswith("report.pdf#chunk") and "(p. 2)" in c for c in cites)
    assert any(c.startswith("notes.md#chunk") for c in cites)
    answers = " ".join(row["messages"][1]["content"] for row, _ in generated)
    assert "40-22" in answers and "Kendrick Lamar" in answers and "73208" in answers
    assert len(outcome.rows) == 2 + len(generated)  # the user's rows are kept as they were
    prepare_dataset(DatasetConfig(path=str(outcome.path)), 512)


def test_generated_answers_with_numbers_not_in_the_passage_are_rejected(fake, tmp_path: Path):
    notes = tmp_path / "notes.txt"
    notes.write_text("The stadium opened in 1975.", encoding="utf-8")
    invented = "<qa><q>When did it open?</q><a>In 1975.</a></qa>\n<qa><q>How many seats?</q><a>About 80000.</a></qa>"
    fake.reset(lambda call: fake_llm.Reply(invented))
    outcome = run(fake, tmp_path / "job", n=0, operations=["generate"], documents=[str(notes)])
    assert outcome.counts["generated"] == 1 and outcome.rejected == {"generate:ungrounded": 1}


def test_documents_are_checked_before_anything_is_sent(fake, tmp_path: Path):
    from unsloth_nb.errors import ConfigError

    scan = tmp_path / "scan.pdf"
    scan.write_bytes(b"not a pdf at all")
    with pytest.raises(ConfigError, match="not a readable PDF"):
        run(fake, tmp_path / "job", operations=["generate"], documents=[str(scan)])
    with pytest.raises(ConfigError, match="no such file"):
        run(fake, tmp_path / "job", operations=["generate"], documents=[str(tmp_path / "missing.md")])
    with pytest.raises(Exception, match=r"teacher\.documents"):
        teacher_config(fake, operations=["generate"])
    assert fake.calls == 0


def test_the_review_shows_before_and_after_of_each_kind_of_change(fake, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from unsloth_nb.cli import main
    from unsloth_nb.teacher.review import review_files

    outcome = run(fake, tmp_path / "job")
    review = outcome.review(4)
    assert [r.operation for r in review.rows] == ["improve", "paraphrase+improve", "improve", "paraphrase+improve"]
    assert review.total_changed == len(QA) * 3
    page = review._repr_html_()
    assert "<del" not in page.split("</tr>")[1]  # an improve only adds here: nothing struck through
    assert "<ins" in page and "That is the complete answer." in page
    again = review_files(outcome.path, tmp_path / "job" / PROVENANCE_FILE, 4)
    assert [r.after_answer for r in again.rows] == [r.after_answer for r in review.rows]
    data = write_qa(tmp_path / "qa.jsonl")
    assert (
        main(["enhance", str(data), "--yes", "--review", "2", "--teacher-base-url", fake.base_url, "--teacher-batch", "off"]) == 0
    )
    printed = capsys.readouterr().out
    assert "2 of 18 changed rows (before | after):" in printed and "| " + QA[0][1][:20] in printed


def test_ctrl_c_sends_no_new_request_and_the_rerun_asks_only_for_the_rest(fake, tmp_path: Path):
    """KeyboardInterrupt in the caller's thread (Ctrl-C in a terminal or a notebook): the requests in flight
    finish and are cached, the queued ones are never sent, and the re-run sends exactly the missing ones."""
    fake.reset(fake_llm.fixed_latency(0.1, teacher()))
    config = teacher_config(fake, concurrency=2)
    tasks, _, _ = build_tasks(rows(), origins(), config)
    requests = [task.request for task in tasks]

    def interrupt(index: int, outcome: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_client(config).run(requests, on_done=interrupt)
    first = fake.calls
    assert 1 <= first <= 4  # what was in flight when Ctrl-C came, not the 12 queued
    fake.reset(teacher())
    make_client(config).run(requests)
    assert fake.calls == len(requests) - first
