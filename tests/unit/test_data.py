"""Reading, detecting, validating and normalising training datasets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fixtures import ALPACA_SEED, TEST_DATA, read_jsonl

from unsloth_nb.config import DatasetConfig, TrainConfig
from unsloth_nb.data import (
    Row,
    check_lengths,
    detect_format,
    format_summary,
    inspect_dataset,
    prepare_dataset,
)
from unsloth_nb.errors import ConfigError, DatasetError
from unsloth_nb.jobrun.events import EventLog

REPO_ROOT = Path(__file__).resolve().parents[2]


def write_jsonl(folder: Path, name: str, rows: list[Any]) -> str:
    (folder / name).write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return name


def prepare(folder: Path, path: str, max_seq_length: int = 2048, **options: Any):
    return prepare_dataset(DatasetConfig(path=path, **options), max_seq_length, base_dir=str(folder))


def count_words(row: Row) -> int:
    """A stand-in tokenizer: one token per whitespace-separated word."""
    if "text" in row:
        return len(row["text"].split())
    return sum(len(turn["content"].split()) for turn in row["messages"])


def conversation(*turns: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in turns]


# ---------------------------------------------------------------------- the real data sets
def test_superbowl_prompt_completion_becomes_user_assistant_turns():
    prepared = prepare(TEST_DATA, "superbowl-qa/train.jsonl", eval_path="superbowl-qa/valid.jsonl")

    assert prepared.summary.format == "prompt_completion"
    assert prepared.summary.rows == len(prepared.train) == 40
    assert prepared.summary.eval_rows == len(prepared.eval or []) == 8
    assert prepared.train[0]["messages"][0] == {"role": "user", "content": "What is Super Bowl LIX?"}
    assert prepared.train[0]["messages"][1]["role"] == "assistant"
    assert prepared.origins[:2] == ["superbowl-qa/train.jsonl:1", "superbowl-qa/train.jsonl:2"]
    assert prepared.eval_origins[0] == "superbowl-qa/valid.jsonl:1"
    assert prepared.summary.tokens_counted_with == "estimate"
    assert 0 < prepared.summary.longest_tokens < prepared.summary.tokens


def test_wikisql_is_a_plain_text_corpus():
    prepared = prepare(TEST_DATA, "wikisql/train.jsonl")

    assert prepared.summary.format == "text"
    assert prepared.kind == "text"
    assert len(prepared.train) == 32
    assert prepared.train[0]["text"].startswith("table: ")


def test_alpaca_seed_nested_instances_give_one_row_each():
    prepared = prepare(TEST_DATA, "alpaca-seed/seed_tasks.jsonl")

    source_rows = read_jsonl(ALPACA_SEED)
    assert prepared.summary.format == "alpaca"
    assert len(prepared.train) == sum(len(row["instances"]) for row in source_rows)
    with_input = next(i for i, row in enumerate(source_rows) if row["instances"][0]["input"].strip())
    expected_prompt = source_rows[with_input]["instruction"] + "\n\n" + source_rows[with_input]["instances"][0]["input"]
    assert prepared.train[with_input]["messages"][0] == {"role": "user", "content": expected_prompt}
    no_input = next(i for i, row in enumerate(source_rows) if not row["instances"][0]["input"].strip())
    assert prepared.train[no_input]["messages"][0]["content"] == source_rows[no_input]["instruction"]


# ---------------------------------------------------------------------- each format, crafted
def test_question_answer_rows_with_a_system_column(tmp_path: Path):
    path = write_jsonl(tmp_path, "qa.jsonl", [{"question": "2+2?", "answer": 4, "system": "Be brief."}])

    prepared = prepare(tmp_path, path)

    assert prepared.summary.format == "qa"
    assert prepared.train == [{"messages": conversation(("system", "Be brief."), ("user", "2+2?"), ("assistant", "4"))}]


def test_flat_alpaca_joins_instruction_and_input(tmp_path: Path):
    rows = [
        {"instruction": "Translate to French.", "input": "cat", "output": "chat"},
        {"instruction": "Name a colour.", "input": "  ", "output": "Blue"},
    ]
    prepared = prepare(tmp_path, write_jsonl(tmp_path, "alpaca.jsonl", rows))

    assert [row["messages"][0]["content"] for row in prepared.train] == ["Translate to French.\n\ncat", "Name a colour."]
    assert prepared.train[1]["messages"][1] == {"role": "assistant", "content": "Blue"}


def test_sharegpt_speakers_map_to_roles(tmp_path: Path):
    turns = [
        {"from": "system", "value": "You are kind."},
        {"from": "human", "value": "Hi"},
        {"from": "gpt", "value": "Hello!"},
        {"from": "user", "value": "Bye"},
        {"from": "model", "value": "Goodbye."},
    ]
    prepared = prepare(tmp_path, write_jsonl(tmp_path, "chat.jsonl", [{"conversations": turns}]))

    assert prepared.summary.format == "sharegpt"
    assert [turn["role"] for turn in prepared.train[0]["messages"]] == ["system", "user", "assistant", "user", "assistant"]


def test_openai_messages_keep_roles_and_join_text_parts(tmp_path: Path):
    parts = [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}]
    rows = [{"messages": [{"role": "user", "content": parts}, {"role": "assistant", "content": "Hi", "weight": 1}]}]

    prepared = prepare(tmp_path, write_jsonl(tmp_path, "messages.jsonl", rows))

    assert prepared.summary.format == "messages"
    assert prepared.train == [{"messages": conversation(("user", "Hello there"), ("assistant", "Hi"))}]


def test_conversational_prompt_completion_lists(tmp_path: Path):
    row = {"prompt": conversation(("user", "Capital of France?")), "completion": conversation(("assistant", "Paris."))}

    prepared = prepare(tmp_path, write_jsonl(tmp_path, "pc.jsonl", [row]))

    assert prepared.train == [{"messages": conversation(("user", "Capital of France?"), ("assistant", "Paris."))}]


def test_csv_rows_report_the_line_where_a_record_starts(tmp_path: Path):
    (tmp_path / "qa.csv").write_text(
        'question,answer\nWhat is 1+1?,2\n"A question\nover two lines",yes\nWho won?,\n', encoding="utf-8"
    )

    with pytest.raises(DatasetError) as caught:
        prepare(tmp_path, "qa.csv")

    assert caught.value.problems == ["qa.csv:5: 'answer' is empty"]
    prepared = prepare(tmp_path, "qa.csv", skip_invalid=True)
    assert prepared.origins == ["qa.csv:2", "qa.csv:3"]
    assert prepared.train[1]["messages"][0]["content"] == "A question\nover two lines"


def test_csv_with_messages_as_json_cells_and_a_short_row(tmp_path: Path):
    cell = json.dumps(conversation(("user", "Hi"), ("assistant", "Hello"))).replace('"', '""')
    (tmp_path / "chat.csv").write_text(f'messages,id\n"{cell}",1\n"{cell}"\n', encoding="utf-8")

    prepared = prepare(tmp_path, "chat.csv", skip_invalid=True)

    assert prepared.train == [{"messages": conversation(("user", "Hi"), ("assistant", "Hello"))}]
    assert prepared.skipped_problems == ["chat.csv:3: 1 fields, but the header has 2 columns"]


def test_json_array_rows_are_located_by_the_line_they_start_on(tmp_path: Path):
    rows = [{"question": "a?", "answer": "A"}, {"question": "b?", "answer": " "}, {"question": "c?", "answer": "C"}]
    (tmp_path / "qa.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")

    prepared = prepare(tmp_path, "qa.json", skip_invalid=True)

    assert prepared.origins == ["qa.json:2", "qa.json:10"]
    assert prepared.skipped_problems == ["qa.json:6: 'answer' is empty"]


def test_json_lines_under_a_json_name_and_a_wrapping_object(tmp_path: Path):
    write_jsonl(tmp_path, "lines.json", [{"text": "one"}, {"text": "two"}])
    (tmp_path / "wrapped.json").write_text(json.dumps({"data": [{"text": "x"}]}), encoding="utf-8")

    assert prepare(tmp_path, "lines.json").origins == ["lines.json:1", "lines.json:2"]
    assert prepare(tmp_path, "wrapped.json").origins == ["wrapped.json: row 1"]


def test_broken_json_array_names_the_line(tmp_path: Path):
    (tmp_path / "bad.json").write_text('[\n {"text": "a"},\n {"text": "b",}\n]\n', encoding="utf-8")

    with pytest.raises(DatasetError, match=r"bad\.json:3: not valid JSON"):
        prepare(tmp_path, "bad.json")


def test_parquet_rows_are_numbered(tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"prompt": ["Hi", "Yo", "Hey"], "completion": ["Hello", "", "Hey there"]})
    pq.write_table(table, tmp_path / "pc.parquet")

    prepared = prepare(tmp_path, "pc.parquet", skip_invalid=True)

    assert prepared.origins == ["pc.parquet: row 1", "pc.parquet: row 3"]
    assert prepared.skipped_problems == ["pc.parquet: row 2: 'completion' is empty"]


def test_saved_datasets_folder_with_two_splits(tmp_path: Path):
    import datasets

    splits = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list([{"question": "q1", "answer": "a1"}, {"question": "q2", "answer": "a2"}]),
            "test": datasets.Dataset.from_list([{"question": "q3", "answer": "a3"}]),
        }
    )
    splits.save_to_disk(str(tmp_path / "saved"))

    train = prepare(tmp_path, "saved")
    test = prepare(tmp_path, "saved", split="test")

    assert train.origins == ["saved/train: row 1", "saved/train: row 2"]
    assert test.train == [{"messages": conversation(("user", "q3"), ("assistant", "a3"))}]
    with pytest.raises(DatasetError, match=r"saved has no split 'validation'; its splits are: train, test"):
        prepare(tmp_path, "saved", split="validation")


# ---------------------------------------------------------------------- detection choices
def test_detection_follows_the_documented_columns():
    assert detect_format({"messages": [], "text": "x"}) == "messages"
    assert detect_format({"instruction": "i", "instances": []}) == "alpaca"
    assert detect_format({"prompt": "p", "response": "r"}) is None  # response is never guessed
    assert detect_format({"text": None, "question": "q", "answer": "a"}) == "qa"  # null columns are absent


def test_column_mapping_renames_before_detection(tmp_path: Path):
    path = write_jsonl(tmp_path, "qa.jsonl", [{"q": "Why?", "a": "Because."}])

    prepared = prepare(tmp_path, path, columns={"question": "q", "answer": "a"})

    assert prepared.summary.format == "qa"
    assert prepared.train[0]["messages"][1]["content"] == "Because."


def test_column_mapping_mistakes_are_named(tmp_path: Path):
    path = write_jsonl(tmp_path, "qa.jsonl", [{"q": "Why?", "a": "Because."}])

    with pytest.raises(DatasetError, match=r"names 'ans', but the first row has no such column; its columns are: q, a"):
        prepare(tmp_path, path, columns={"question": "q", "answer": "ans"})
    with pytest.raises(ConfigError, match=r"'reply' is not a column name we read"):
        prepare(tmp_path, path, columns={"reply": "a"})


def test_format_override_beats_detection(tmp_path: Path):
    path = write_jsonl(tmp_path, "both.jsonl", [{"question": "q", "answer": "a", "text": "q a"}])

    assert prepare(tmp_path, path).summary.format == "qa"
    assert prepare(tmp_path, path, format="text").train == [{"text": "q a"}]
    with pytest.raises(DatasetError, match=r"both\.jsonl:1: missing 'messages' \(columns: question, answer, text\)"):
        prepare(tmp_path, path, format="messages")


def test_unknown_columns_name_what_was_found_and_what_is_accepted(tmp_path: Path):
    path = write_jsonl(tmp_path, "odd.jsonl", [{"query": "q", "reply": "r"}])

    with pytest.raises(DatasetError) as caught:
        prepare(tmp_path, path)

    assert caught.value.problems == ["odd.jsonl:1: no known format (columns: query, reply)"]
    assert "Accepted formats" in str(caught.value) and "--columns question=q,answer=a" in str(caught.value)


def test_a_half_present_format_says_which_column_is_missing(tmp_path: Path):
    path = write_jsonl(tmp_path, "qa.jsonl", [{"question": "q"}])

    with pytest.raises(DatasetError, match=r"qa\.jsonl:1: missing 'answer': Q&A rows need 'question' and 'answer'"):
        prepare(tmp_path, path)


def test_mixed_formats_in_one_file_name_both(tmp_path: Path):
    rows = [{"question": "q", "answer": "a"}, {"text": "plain"}, {"question": "q2", "answer": "a2"}]
    path = write_jsonl(tmp_path, "mixed.jsonl", rows)

    with pytest.raises(DatasetError) as caught:
        prepare(tmp_path, path)

    assert caught.value.problems == [
        "mixed.jsonl:2: row is text (text) but the rows before it are Q&A (question/answer); a file holds one format"
    ]


# ---------------------------------------------------------------------- row problems
def test_malformed_rows_are_listed_by_file_and_line(tmp_path: Path):
    lines = ['{"text": "ok"}', "", '{"text": "ok" "oops"}', "[1, 2]", '{"text": ""}']
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(DatasetError) as caught:
        prepare(tmp_path, "bad.jsonl")

    assert caught.value.problems == [
        "bad.jsonl:3: not valid JSON (Expecting ',' delimiter at column 15)",
        "bad.jsonl:4: expected an object with named fields, got a list",
        "bad.jsonl:5: 'text' is empty",
    ]
    assert str(caught.value).startswith("bad.jsonl: 3 of 4 rows cannot be used:\n  bad.jsonl:3:")
    assert "--skip-invalid" in str(caught.value)


def test_skip_invalid_drops_bad_rows_and_counts_them(tmp_path: Path):
    rows = [{"text": f"row {i}"} if i % 3 else {"text": "  "} for i in range(12)]
    path = write_jsonl(tmp_path, "some_bad.jsonl", rows)

    prepared = prepare(tmp_path, path, skip_invalid=True)

    assert prepared.summary.rows == 8
    assert prepared.summary.skipped == 4
    assert prepared.skipped_problems[0] == "some_bad.jsonl:1: 'text' is empty"
    assert "4 skipped" in format_summary(prepared.summary)


def test_only_the_first_five_problems_are_shown(tmp_path: Path):
    path = write_jsonl(tmp_path, "many.jsonl", [{"text": "ok"}] + [{"text": ""}] * 8)

    with pytest.raises(DatasetError) as caught:
        prepare(tmp_path, path)

    assert len(caught.value.problems) == 8
    assert "... and 3 more" in str(caught.value)


def test_every_row_invalid_is_an_error_even_when_skipping(tmp_path: Path):
    path = write_jsonl(tmp_path, "all_bad.jsonl", [{"text": ""}, {"text": " "}])

    with pytest.raises(DatasetError, match=r"all_bad\.jsonl: none of its 2 rows can be used"):
        prepare(tmp_path, path, skip_invalid=True)


@pytest.mark.parametrize(
    ("turns", "problem"),
    [
        ([("user", "a"), ("user", "b"), ("assistant", "c")], "turn 2: two user turns in a row"),
        ([("assistant", "a"), ("user", "b")], "turn 1: the conversation starts with an assistant turn"),
        ([("user", "a"), ("assistant", "b"), ("system", "c")], "turn 3: a system turn can only be the first turn"),
        ([("system", "s"), ("user", "a")], "no assistant turn"),
        ([("user", "a"), ("assistant", " \n")], "turn 2: empty assistant content"),
        ([("user", "a"), ("tool", "b")], "turn 2: unknown role 'tool'; use system, user or assistant"),
    ],
)
def test_conversation_rules(tmp_path: Path, turns: list[tuple[str, str]], problem: str):
    path = write_jsonl(tmp_path, "chat.jsonl", [{"messages": conversation(("user", "ok"), ("assistant", "ok"))}])
    with (tmp_path / path).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"messages": conversation(*turns)}) + "\n")

    with pytest.raises(DatasetError) as caught:
        prepare(tmp_path, path)

    assert caught.value.problems[0].startswith(f"chat.jsonl:2: {problem}")


def test_unknown_sharegpt_speaker(tmp_path: Path):
    turns = [{"from": "human", "value": "hi"}, {"from": "bot", "value": "hello"}]
    path = write_jsonl(tmp_path, "chat.jsonl", [{"conversations": turns}])

    with pytest.raises(DatasetError, match=r"chat\.jsonl:1: turn 2: unknown speaker 'bot'"):
        prepare(tmp_path, path)


# ---------------------------------------------------------------------- files that cannot be read
def test_empty_files(tmp_path: Path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "blank.jsonl").write_text("\n  \n", encoding="utf-8")
    (tmp_path / "header.csv").write_text("question,answer\n", encoding="utf-8")

    with pytest.raises(DatasetError, match=r"empty\.jsonl is empty \(0 bytes\)"):
        prepare(tmp_path, "empty.jsonl")
    with pytest.raises(DatasetError, match=r"blank\.jsonl is empty: it has no rows"):
        prepare(tmp_path, "blank.jsonl")
    with pytest.raises(DatasetError, match=r"header\.csv is empty: it has no rows"):
        prepare(tmp_path, "header.csv")


def test_wrong_encodings(tmp_path: Path):
    (tmp_path / "latin1.jsonl").write_bytes('{"text": "ok"}\n{"text": "café"}\n'.encode("latin-1"))
    (tmp_path / "utf16.jsonl").write_bytes('{"text": "ok"}\n'.encode("utf-16"))

    with pytest.raises(DatasetError, match=r"latin1\.jsonl:2: not UTF-8 text \(byte 0xe9 at column 14\)"):
        prepare(tmp_path, "latin1.jsonl")
    with pytest.raises(DatasetError, match=r"utf16\.jsonl is UTF-16/UTF-32 encoded; save it as UTF-8"):
        prepare(tmp_path, "utf16.jsonl")


def test_a_utf8_bom_is_fine(tmp_path: Path):
    (tmp_path / "bom.csv").write_bytes("\ufefftext\nhello\n".encode())

    assert prepare(tmp_path, "bom.csv").train == [{"text": "hello"}]


def test_missing_file_says_where_it_looked(tmp_path: Path):
    with pytest.raises(DatasetError) as caught:
        prepare(tmp_path, "data/nope.jsonl")

    message = str(caught.value)
    assert message.startswith("dataset not found: data/nope.jsonl")
    assert f"base_dir {tmp_path}" in message and str(tmp_path / "data/nope.jsonl") in message


def test_folders_and_extensions_we_do_not_read(tmp_path: Path):
    (tmp_path / "plain").mkdir()
    write_jsonl(tmp_path / "plain", "train.jsonl", [{"text": "x"}])
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")

    with pytest.raises(DatasetError, match=r"plain is a folder but not a saved `datasets` folder") as caught:
        prepare(tmp_path, "plain")
    assert "It holds train.jsonl: give one of those files." in str(caught.value)
    with pytest.raises(DatasetError, match=r"notes\.txt: unknown file type '\.txt'"):
        prepare(tmp_path, "notes.txt")


# ---------------------------------------------------------------------- lengths and token counts
def test_overlong_rows_with_a_real_token_counter(tmp_path: Path):
    rows = [{"text": "short row"}, {"text": " ".join(["word"] * 40)}, {"text": "also short"}]
    path = write_jsonl(tmp_path, "long.jsonl", rows)
    config = DatasetConfig(path=path, long_rows="error")

    with pytest.raises(DatasetError) as caught:
        prepare_dataset(config, 32, count_tokens=count_words, base_dir=str(tmp_path))
    assert caught.value.problems == ["long.jsonl:2: row is 40 tokens, longer than max_seq_length=32"]

    config.skip_invalid = True
    prepared = prepare_dataset(config, 32, count_tokens=count_words, base_dir=str(tmp_path))
    assert prepared.summary.tokens_counted_with == "tokenizer"
    assert (prepared.summary.rows, prepared.summary.skipped, prepared.summary.tokens) == (2, 1, 4)


def test_check_lengths_recounts_a_prepared_dataset(tmp_path: Path):
    rows = [{"question": "q", "answer": "one two three"}, {"question": "q", "answer": " ".join(["w"] * 30)}]
    prepared = prepare(tmp_path, write_jsonl(tmp_path, "qa.jsonl", rows), max_seq_length=24)
    assert prepared.summary.tokens_counted_with == "estimate"
    assert len(prepared.train) == 2  # the estimate (~24 tokens) is not clearly over 24

    with pytest.raises(DatasetError, match=r"qa\.jsonl:2: row is 31 tokens, longer than max_seq_length=24"):
        check_lengths(prepared, 24, count_words, long_rows="error")
    checked = check_lengths(prepared, 24, count_words, skip_invalid=True, long_rows="error")

    assert checked.origins == ["qa.jsonl:1"]
    assert (checked.summary.rows, checked.summary.skipped, checked.summary.longest_tokens) == (1, 1, 4)
    assert checked.summary.tokens_counted_with == "tokenizer"
    assert checked.skipped_problems == ["qa.jsonl:2: row is 31 tokens, longer than max_seq_length=24"]


def test_estimates_only_flag_rows_clearly_over_the_limit(tmp_path: Path):
    rows = [{"text": "x" * 4 * 20}, {"text": "x" * 4 * 30}, {"text": "x" * 4 * 31}]
    path = write_jsonl(tmp_path, "est.jsonl", rows)

    prepared = prepare(tmp_path, path, max_seq_length=20, skip_invalid=True, long_rows="error")

    assert prepared.origins == ["est.jsonl:1", "est.jsonl:2"]
    assert prepared.skipped_problems == ["est.jsonl:3: row is ~31 tokens (estimate), longer than max_seq_length=20"]


def test_over_long_rows_are_truncated_by_default_and_said_in_one_line(tmp_path: Path):
    long_answer = " ".join(["w"] * 30)
    rows = [
        {"question": "short", "answer": "one two"},
        {"question": "q", "answer": long_answer},  # 31 words: 7 cut at 24
        {"question": " ".join(["p"] * 30), "answer": "lost"},  # the prompt alone fills 24: nothing to learn
    ]
    path = write_jsonl(tmp_path, "long.jsonl", rows)

    prepared = prepare_dataset(DatasetConfig(path=path), 24, count_tokens=count_words, base_dir=str(tmp_path))

    assert prepared.origins == ["long.jsonl:1", "long.jsonl:2"]
    summary = prepared.summary
    assert (summary.truncated_rows, summary.tokens_cut, summary.long_dropped, summary.skipped) == (1, 7, 1, 0)
    assert summary.tokens == 3 + 24  # what the trainer sees after the cut
    line = format_summary(summary).splitlines()[1]
    assert line == (
        "1 row(s) longer than max_seq_length=24 are truncated (7 tokens cut); "
        "1 row(s) dropped: their answer starts past the limit (dataset.long_rows: truncate)."
    )


def test_long_rows_drop_and_error(tmp_path: Path):
    rows = [{"text": "short row"}, {"text": " ".join(["word"] * 40)}]
    path = write_jsonl(tmp_path, "long.jsonl", rows)

    dropped = prepare_dataset(DatasetConfig(path=path, long_rows="drop"), 32, count_tokens=count_words, base_dir=str(tmp_path))
    assert (dropped.summary.rows, dropped.summary.long_dropped, dropped.summary.truncated_rows) == (1, 1, 0)
    assert "1 row(s) dropped: longer than max_seq_length=32 (dataset.long_rows: drop)" in format_summary(dropped.summary)

    with pytest.raises(DatasetError, match="longer than max_seq_length=32"):
        prepare_dataset(DatasetConfig(path=path, long_rows="error"), 32, count_tokens=count_words, base_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"dataset\.long_rows"):
        TrainConfig.from_dict({"model": "m", "dataset": {"path": path, "long_rows": "cut"}})


def test_check_lengths_truncates_like_preflight(tmp_path: Path):
    rows = [{"question": "q", "answer": "one two three"}, {"question": "q", "answer": " ".join(["w"] * 30)}]
    prepared = prepare(tmp_path, write_jsonl(tmp_path, "qa.jsonl", rows), max_seq_length=24)

    checked = check_lengths(prepared, 24, count_words)

    assert (checked.summary.rows, checked.summary.truncated_rows, checked.summary.tokens_cut) == (2, 1, 7)
    assert checked.summary.to_event()["truncated_rows"] == 1


# ---------------------------------------------------------------------- column names people use
@pytest.mark.parametrize(
    ("header", "question", "answer"),
    [
        ("Question,Answer", "question", "answer"),
        ("QUESTION,ANSWER", "question", "answer"),
        ("input,output", "question", "answer"),
        ("Prompt,Response", "question", "answer"),
        ("query,response", "question", "answer"),
        ("instruction,response", "question", "answer"),
        ("Human,Assistant", "question", "answer"),
        ("user,assistant", "question", "answer"),
    ],
)
def test_column_names_match_without_case_and_common_synonyms(tmp_path: Path, header: str, question: str, answer: str):
    (tmp_path / "export.csv").write_text(f"{header}\nWho won Super Bowl LIX?,The Eagles\n", encoding="utf-8")

    prepared = prepare(tmp_path, "export.csv")

    assert prepared.train[0]["messages"] == conversation(("user", "Who won Super Bowl LIX?"), ("assistant", "The Eagles"))
    theirs = header.split(",")
    assert prepared.summary.columns == {question: theirs[0], answer: theirs[1]}
    assert f"({theirs[0]}->question, {theirs[1]}->answer)".replace("(", "(columns ") in format_summary(prepared.summary)


def test_exact_names_and_explicit_mappings_are_not_guessed(tmp_path: Path):
    exact = prepare(tmp_path, write_jsonl(tmp_path, "qa.jsonl", [{"question": "q", "answer": "a"}]))
    assert exact.summary.columns == {}
    assert "columns" not in format_summary(exact.summary)
    alpaca = prepare(tmp_path, write_jsonl(tmp_path, "al.jsonl", [{"Instruction": "do", "Input": "x", "Output": "y"}]))
    assert alpaca.summary.format == "alpaca"
    mapped = prepare(tmp_path, write_jsonl(tmp_path, "m.jsonl", [{"q": "q", "a": "a"}]), columns={"question": "q", "answer": "a"})
    assert mapped.summary.columns == {}


# ---------------------------------------------------------------------- real-world shapes, no flags
REAL_WORLD = REPO_ROOT / "tests" / "data" / "real_world"


@pytest.mark.parametrize("name", sorted(p.name for p in REAL_WORLD.iterdir()) if REAL_WORLD.is_dir() else [])
def test_real_world_shaped_datasets_prepare_without_a_flag(name: str):
    prepared = prepare_dataset(DatasetConfig(path=name), 256, base_dir=str(REAL_WORLD))

    assert prepared.summary.rows >= 3
    assert prepared.summary.skipped == 0
    for row in prepared.train:
        assert [turn["role"] for turn in row["messages"]][-2:] == ["user", "assistant"]


def test_the_real_world_set_is_there():
    assert len(list(REAL_WORLD.iterdir())) >= 6


# ---------------------------------------------------------------------- choosing rows
def test_max_rows_keeps_the_first_valid_rows(tmp_path: Path):
    rows = [{"text": ""}] + [{"text": f"row {i}"} for i in range(10)]
    path = write_jsonl(tmp_path, "rows.jsonl", rows)

    prepared = prepare(tmp_path, path, max_rows=3, skip_invalid=True)

    assert [row["text"] for row in prepared.train] == ["row 0", "row 1", "row 2"]


def test_eval_split_is_seeded_and_keeps_both_sides(tmp_path: Path):
    path = write_jsonl(tmp_path, "rows.jsonl", [{"text": f"row {i}"} for i in range(40)])

    first = prepare(tmp_path, path, eval_split=0.1)
    again = prepare(tmp_path, path, eval_split=0.1)

    assert (len(first.train), len(first.eval or [])) == (36, 4)
    assert first.eval == again.eval and first.eval_origins == again.eval_origins
    assert set(first.origins).isdisjoint(first.eval_origins)
    assert first.summary.eval_rows == 4

    two = prepare(tmp_path, write_jsonl(tmp_path, "two.jsonl", [{"text": "a"}, {"text": "b"}]), eval_split=0.01)
    assert (len(two.train), len(two.eval or [])) == (1, 1)
    with pytest.raises(DatasetError, match=r"eval_split=0\.1 needs at least 2 valid rows, found 1"):
        prepare(tmp_path, write_jsonl(tmp_path, "one.jsonl", [{"text": "a"}]), eval_split=0.1)


def test_eval_file_problems_are_reported_too(tmp_path: Path):
    train = write_jsonl(tmp_path, "train.jsonl", [{"question": "q", "answer": "a"}])
    evaluation = write_jsonl(tmp_path, "eval.jsonl", [{"question": "q", "answer": "a"}, {"question": "q", "answer": ""}])

    with pytest.raises(DatasetError) as caught:
        prepare(tmp_path, train, eval_path=evaluation)

    assert caught.value.problems == ["eval.jsonl:2: 'answer' is empty"]


# ---------------------------------------------------------------------- what the user sees
def test_format_summary_reads_as_one_line():
    prepared = prepare(TEST_DATA, "superbowl-qa/train.jsonl")

    line = format_summary(prepared.summary)

    assert line.startswith("superbowl-qa/train.jsonl: 40 rows, prompt/completion, ~")
    assert " tokens (estimate), longest " in line and line.endswith("0 skipped")


def test_summary_is_a_valid_event_payload():
    prepared = prepare(TEST_DATA, "wikisql/train.jsonl")
    log = EventLog("job-1")

    event = log.emit("summary", **prepared.summary.to_event())

    assert event["rows"] == 32 and event["format"] == "text"


def test_inspect_returns_rows_and_problems_without_raising(tmp_path: Path):
    rows = [{"question": f"q{i}", "answer": "a" if i != 2 else ""} for i in range(8)]
    path = write_jsonl(tmp_path, "qa.jsonl", rows)

    preview = inspect_dataset(str(tmp_path / path), n=3)

    assert preview.format == "qa"
    assert len(preview.rows) == 3 and preview.rows[0]["messages"][0]["content"] == "q0"
    assert preview.problems == [f"{tmp_path / path}:3: 'answer' is empty"]
    assert preview.summary is not None and preview.summary.rows == 7
    assert preview.error is None and not preview.ok
    assert "'answer' is empty" in preview.describe()


def test_inspect_reports_a_missing_file_as_an_error_message(tmp_path: Path):
    preview = inspect_dataset(DatasetConfig(path="missing.jsonl"), base_dir=str(tmp_path))

    assert preview.error is not None and preview.error.startswith("dataset not found: missing.jsonl")
    assert preview.rows == [] and preview.summary is None


def test_importing_the_module_loads_no_heavy_library():
    code = "import sys, unsloth_nb.data; print(sorted({'pyarrow', 'datasets', 'pandas', 'torch'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)

    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("line", "column"),
    [
        ('{"question": "What was the score?", "answer": "40-22"', 54),  # unclosed at the end of the line
        ('{"question": "Who won?", "answer": "The Eagles",}', 49),
        ('  {"question": "Who won?" "answer": "x"}', 27),  # leading blanks count, as in an editor
    ],
)
def test_an_invalid_json_line_names_the_real_column(tmp_path: Path, line: str, column: int):
    """The line used to be parsed with its newline, so an error at its end read "column 1" (of the next line)."""
    (tmp_path / "bad.jsonl").write_text('{"question": "Q", "answer": "A"}\n' + line + "\r\n", encoding="utf-8")

    preview = inspect_dataset("bad.jsonl", base_dir=str(tmp_path))

    assert preview.problems == [f"bad.jsonl:2: not valid JSON ({json_message(line)} at column {column})"]


def json_message(line: str) -> str:
    try:
        json.loads(line)
    except json.JSONDecodeError as exc:
        return exc.msg
    raise AssertionError("the line is valid JSON")
