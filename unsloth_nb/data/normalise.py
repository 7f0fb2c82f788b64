"""Normalising one raw row to a training row, checking it on the way.

Each format's normaliser turns a row into ``{"messages": [...]}`` (roles
system/user/assistant, user and assistant alternating, at least one assistant
turn) or ``{"text": ...}``. Whatever is wrong with the row is raised as a
``_RowProblem`` and comes back from :func:`_normalise_record` as the problem in
the row's place, so the caller can report it as ``file:line: problem`` and go on
to the next row instead of stopping the read.

``qa``, ``alpaca`` and ``prompt_completion`` rows may carry a ``system`` column
that becomes a leading system turn. Numbers in text fields are read as text. In
CSV files, ``messages``/``conversations``/``instances`` cells holding a JSON list
are parsed.

The first valid row fixes the file's format (unless ``DatasetConfig.format``
overrides detection); a later row of another format is an error naming both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from unsloth_nb.data.formats import (
    _apply_columns,
    _columns_of,
    _describe_format,
    _kind,
    _shown,
    _unknown_format_problem,
    detect_format,
)
from unsloth_nb.data.readers import _Record
from unsloth_nb.data.records import Row, _Part

SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "system": "system",
}
MESSAGE_ROLES = ("system", "user", "assistant")


class _RowProblem(Exception):
    """What is wrong with one row; becomes a `file:line: ...` line."""


def _normalise_record(record: _Record, names: Mapping[str, str], part: _Part, forced: str | None) -> list[tuple[str, Row | str]]:
    """Each row a record gives (alpaca `instances` give several), or the problem in its place.

    Fixes ``part.format`` from the first valid row when detecting.
    """
    value = record.value
    if not isinstance(value, Mapping):
        return [(record.origin, f"expected an object with named fields, got {_kind(value)}")]
    row = _apply_columns(value, names)
    detected = detect_format(row)
    fmt = forced or part.format or detected
    if fmt is None:
        part.unknown_format = True
        return [(record.origin, _unknown_format_problem(row, names))]
    if forced is None and part.format is not None and detected not in (None, part.format):
        return [
            (
                record.origin,
                f"row is {_describe_format(detected)} but the rows before it are {_describe_format(part.format)}; "
                "a file holds one format",
            )
        ]
    try:
        units = _split_instances(row, names) if fmt == "alpaca" else [("", row)]
    except _RowProblem as problem:
        return [(record.origin, str(problem))]
    results: list[tuple[str, Row | str]] = []
    for suffix, unit in units:
        origin = record.origin + suffix
        try:
            results.append((origin, _NORMALISERS[fmt](unit, names)))
        except _RowProblem as problem:
            results.append((origin, str(problem)))
    if part.format is None and any(not isinstance(outcome, str) for _, outcome in results):
        part.format = fmt
    return results


def _text(row: Mapping[str, Any], key: str, names: Mapping[str, str], required: bool = True) -> str:
    """A text field; numbers become text; missing or blank is a problem when required."""
    value = row.get(key)
    shown = _shown(key, names)
    if value is None:
        if required:
            raise _RowProblem(f"missing '{shown}' (columns: {_columns_of(row, names)})")
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _RowProblem(f"'{shown}' should be text, got {_kind(value)}")
    text = value if isinstance(value, str) else str(value)
    if required and not text.strip():
        raise _RowProblem(f"'{shown}' is empty")
    return text


def _list(row: Mapping[str, Any], key: str, names: Mapping[str, str], what: str) -> list[Any]:
    """A list field; in CSV files it arrives as JSON text."""
    value = row.get(key)
    shown = _shown(key, names)
    if value is None:
        raise _RowProblem(f"missing '{shown}' (columns: {_columns_of(row, names)})")
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise _RowProblem(f"'{shown}' is not a valid JSON list ({exc.msg})") from None
    if not isinstance(value, (list, tuple)):
        raise _RowProblem(f"'{shown}' should be a list of {what}, got {_kind(value)}")
    if not value:
        raise _RowProblem(f"'{shown}' is an empty list")
    return list(value)


def _with_system(row: Mapping[str, Any], names: Mapping[str, str], turns: list[dict[str, str]]) -> Row:
    system = _text(row, "system", names, required=False)
    if system.strip():
        turns.insert(0, {"role": "system", "content": system})
    return {"messages": turns}


def _qa_row(row: Mapping[str, Any], names: Mapping[str, str]) -> Row:
    question = _text(row, "question", names)
    answer = _text(row, "answer", names)
    return _with_system(row, names, [{"role": "user", "content": question}, {"role": "assistant", "content": answer}])


def _alpaca_row(row: Mapping[str, Any], names: Mapping[str, str]) -> Row:
    instruction = _text(row, "instruction", names)
    extra = _text(row, "input", names, required=False)
    output = _text(row, "output", names)
    prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    return _with_system(row, names, [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}])


def _split_instances(row: dict[str, Any], names: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """Nested alpaca (instruction + instances: [{input, output}]) -> one flat row per instance."""
    if row.get("output") is not None or row.get("instances") is None:
        return [("", row)]
    instances = _list(row, "instances", names, "{input, output} objects")
    units = []
    for number, instance in enumerate(instances, 1):
        if not isinstance(instance, Mapping):
            raise _RowProblem(f"instance {number}: expected an object with input and output, got {_kind(instance)}")
        unit = {key: value for key, value in row.items() if key != "instances"}
        unit.update(instance)
        units.append((f": instance {number}" if len(instances) > 1 else "", unit))
    return units


def _prompt_completion_row(row: Mapping[str, Any], names: Mapping[str, str]) -> Row:
    prompt, completion = row.get("prompt"), row.get("completion")
    if isinstance(prompt, (list, tuple)) or isinstance(completion, (list, tuple)):
        if not (isinstance(prompt, (list, tuple)) and isinstance(completion, (list, tuple))):
            raise _RowProblem(
                f"'{_shown('prompt', names)}' and '{_shown('completion', names)}' should both be text "
                "or both be lists of messages"
            )
        turns = _role_content_turns([*prompt, *completion])
        _check_conversation(turns)
        return {"messages": turns}
    text_prompt = _text(row, "prompt", names)
    text_completion = _text(row, "completion", names)
    return _with_system(row, names, [{"role": "user", "content": text_prompt}, {"role": "assistant", "content": text_completion}])


def _messages_row(row: Mapping[str, Any], names: Mapping[str, str]) -> Row:
    turns = _role_content_turns(_list(row, "messages", names, "{role, content} turns"))
    _check_conversation(turns)
    return {"messages": turns}


def _sharegpt_row(row: Mapping[str, Any], names: Mapping[str, str]) -> Row:
    turns = []
    for number, turn in enumerate(_list(row, "conversations", names, "{from, value} turns"), 1):
        if not isinstance(turn, Mapping):
            raise _RowProblem(f"turn {number}: expected an object with from and value, got {_kind(turn)}")
        if turn.get("from") is None and turn.get("role") is not None:
            turns.append(_role_content_turn(turn, number))
            continue
        speaker = turn.get("from")
        if speaker is None:
            raise _RowProblem(f"turn {number}: missing 'from'")
        role = SHAREGPT_ROLES.get(str(speaker).lower())
        if role is None:
            raise _RowProblem(f"turn {number}: unknown speaker {speaker!r}; ShareGPT uses human, gpt and system")
        turns.append({"role": role, "content": _turn_content(turn.get("value"), number, "value")})
    _check_conversation(turns)
    return {"messages": turns}


def _text_row(row: Mapping[str, Any], names: Mapping[str, str]) -> Row:
    return {"text": _text(row, "text", names)}


_NORMALISERS: dict[str, Callable[[Mapping[str, Any], Mapping[str, str]], Row]] = {
    "messages": _messages_row,
    "sharegpt": _sharegpt_row,
    "alpaca": _alpaca_row,
    "qa": _qa_row,
    "prompt_completion": _prompt_completion_row,
    "text": _text_row,
}


def _role_content_turns(turns: Iterable[Any]) -> list[dict[str, str]]:
    out = []
    for number, turn in enumerate(turns, 1):
        if not isinstance(turn, Mapping):
            raise _RowProblem(f"turn {number}: expected an object with role and content, got {_kind(turn)}")
        out.append(_role_content_turn(turn, number))
    return out


def _role_content_turn(turn: Mapping[str, Any], number: int) -> dict[str, str]:
    role = turn.get("role")
    if role is None:
        raise _RowProblem(f"turn {number}: missing 'role'")
    if role not in MESSAGE_ROLES:
        raise _RowProblem(f"turn {number}: unknown role {role!r}; use system, user or assistant")
    return {"role": role, "content": _turn_content(turn.get("content"), number, "content")}


def _turn_content(content: Any, number: int, key: str) -> str:
    """Text of a turn; OpenAI-style lists of {type: text, text} parts are joined."""
    if content is None:
        raise _RowProblem(f"turn {number}: missing '{key}'")
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        texts = []
        for part in content:
            if not (isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise _RowProblem(f"turn {number}: only text content is supported, found {part!r:.60}")
            texts.append(part["text"])
        return "".join(texts)
    raise _RowProblem(f"turn {number}: '{key}' should be text, got {_kind(content)}")


def _check_conversation(turns: list[dict[str, str]]) -> None:
    """Optional leading system turn, then user/assistant alternating from user, with an assistant turn."""
    expected = "user"
    previous = None
    for number, turn in enumerate(turns, 1):
        role = turn["role"]
        if not turn["content"].strip():
            raise _RowProblem(f"turn {number}: empty {role} content")
        if role == "system":
            if number != 1:
                raise _RowProblem(f"turn {number}: a system turn can only be the first turn")
        elif role != expected:
            if role == previous:
                raise _RowProblem(f"turn {number}: two {role} turns in a row")
            raise _RowProblem(
                f"turn {number}: the conversation starts with an assistant turn; "
                "it must start with a user turn (after an optional system turn)"
            )
        else:
            expected = "assistant" if role == "user" else "user"
        previous = role
    if not any(turn["role"] == "assistant" for turn in turns):
        raise _RowProblem("no assistant turn; each row needs at least one answer to learn from")
