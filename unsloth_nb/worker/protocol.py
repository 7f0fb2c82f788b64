"""The wire format between the client and the pod worker, importable anywhere.

The client-side RunPod backend and the worker both import this module, so it uses
the standard library and ``unsloth_nb.data`` only (no torch, no HTTP server).

Packed dataset (``PUT /job/dataset``): UTF-8 JSON Lines. The first line is a header,
every other line one normalised row::

    {"unsloth_nb_dataset": 1, "train": 120, "eval": 12, "summary": {...DatasetSummary fields...}}
    {"split": "train", "row": {"messages": [...]}, "origin": "qa.jsonl:3"}
    {"split": "eval", "row": {"text": "..."}, "origin": "qa.jsonl:97"}

The header's counts let the worker tell a truncated upload from a complete one even
before the checksum is compared; ``origin`` keeps the client's ``file:line`` so an
error found on the pod (a row too long for the real tokenizer) names the user's file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from unsloth_nb.data import DatasetSummary, PreparedDataset, Row
from unsloth_nb.jobrun.lifecycle import ENGINE_STATES, TERMINAL_STATES

PACK_VERSION = 1
DEFAULT_PORT = 8000

#: Largest JSON request body (PUT /job and friends).
MAX_JSON_BYTES = 1 << 20
#: Largest dataset chunk in one PUT /job/dataset; well under any proxy body limit.
MAX_CHUNK_BYTES = 8 << 20
#: Largest dataset a job may declare.
MAX_DATASET_BYTES = 16 << 30
#: Longest wait of one GET /events: far under the RunPod proxy's 100 s timeout.
MAX_POLL_SECONDS = 25.0
#: Most events in one GET /events answer (``more`` is true when there are further ones).
MAX_EVENTS_PER_POLL = 1000

# ---------------------------------------------------------------------- the worker's job states
#: No job declared yet.
IDLE = "idle"
#: A job is declared and its dataset is arriving.
RECEIVING = "receiving"
#: The worker restarted mid-job (it died, or a network volume brought the job to a new pod); POST /job/start resumes.
INTERRUPTED = "interrupted"
#: Where the engine is busy on the pod; a client mirrors these as its job's state.
REMOTE_RUNNING_STATES = ENGINE_STATES
#: The remote job ended; nothing moves it again.
REMOTE_END_STATES = TERMINAL_STATES
#: Set by the pod's start-up script when it restarts a worker that died: the dead one's exit status.
LAST_EXIT_ENV = "UNSLOTH_NB_WORKER_LAST_EXIT"
#: Precedes the dead worker's log tail in the message a restarted worker logs (clients cut the tail there).
CRASH_LOG_MARKER = "the last lines of its log:\n"

JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class PackError(ValueError):
    """A packed dataset that cannot be read back (truncated, edited, or from another version)."""


# ---------------------------------------------------------------------- datasets
def pack_dataset(prepared: PreparedDataset) -> bytes:
    """Serialise a prepared dataset for upload to a pod (see the module docstring)."""
    eval_rows = prepared.eval or []
    header = {
        "unsloth_nb_dataset": PACK_VERSION,
        "train": len(prepared.train),
        "eval": len(eval_rows),
        "summary": dataclasses.asdict(prepared.summary),
    }
    if prepared.reference is not None:
        # Sources the pod reads itself (data/remote.py): only the reference travels, never a row.
        header.update(train=0, eval=0, reference=prepared.reference)
        return (json.dumps(header, ensure_ascii=False) + "\n").encode("utf-8")
    lines = [json.dumps(header, ensure_ascii=False)]
    lines += _row_lines("train", prepared.train, prepared.origins)
    lines += _row_lines("eval", eval_rows, prepared.eval_origins)
    return ("\n".join(lines) + "\n").encode("utf-8")


def _row_lines(split: str, rows: list[Row], origins: list[str]) -> Iterator[str]:
    for index, row in enumerate(rows):
        record: dict[str, Any] = {"split": split, "row": row}
        if index < len(origins):
            record["origin"] = origins[index]
        yield json.dumps(record, ensure_ascii=False)


def unpack_dataset(data: bytes) -> tuple[list[Row], list[Row]]:
    """The (train, eval) rows of a packed dataset; raises PackError if it is not one."""
    prepared = unpack_prepared(data)
    return prepared.train, prepared.eval or []


def unpack_prepared(data: bytes) -> PreparedDataset:
    """A packed dataset back as a PreparedDataset, summary and origins included."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PackError(f"packed dataset is not UTF-8 (byte {exc.start})") from None
    lines = text.splitlines()
    if not lines:
        raise PackError("packed dataset is empty")
    header = _json_object(lines[0], 1)
    if header.get("unsloth_nb_dataset") != PACK_VERSION:
        raise PackError(f"line 1: not an unsloth-nb dataset header of version {PACK_VERSION}")
    splits: dict[str, tuple[list[Row], list[str]]] = {"train": ([], []), "eval": ([], [])}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        record = _json_object(line, number)
        split = record.get("split")
        row = record.get("row")
        if split not in splits:
            raise PackError(f"line {number}: split must be 'train' or 'eval', got {split!r}")
        if not _is_row(row):
            raise PackError(f"line {number}: row must be {{'messages': [...]}} or {{'text': '...'}}")
        rows, origins = splits[split]
        rows.append(row)
        origins.append(str(record.get("origin") or f"{split} row {len(rows)}"))
    train, train_origins = splits["train"]
    evaluation, eval_origins = splits["eval"]
    if (len(train), len(evaluation)) != (header.get("train"), header.get("eval")):
        raise PackError(
            f"header announces {header.get('train')} train and {header.get('eval')} eval rows, "
            f"found {len(train)} and {len(evaluation)} (truncated upload?)"
        )
    reference = header.get("reference")
    if reference is not None and not isinstance(reference, dict):
        raise PackError("line 1: the dataset reference must be a JSON object")
    if not train and reference is None:
        raise PackError("packed dataset has no training rows")
    return PreparedDataset(
        train=train,
        eval=evaluation or None,
        summary=_summary(header.get("summary"), train, evaluation),
        origins=train_origins,
        eval_origins=eval_origins,
        reference=reference,
    )


def _json_object(line: str, number: int) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise PackError(f"line {number}: not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise PackError(f"line {number}: expected a JSON object")
    return value


def _is_row(row: Any) -> TypeGuard[Row]:
    if not isinstance(row, dict):
        return False
    if "messages" in row:
        return isinstance(row["messages"], list) and all(isinstance(turn, dict) for turn in row["messages"])
    return isinstance(row.get("text"), str)


def _summary(raw: Any, train: list[Row], evaluation: list[Row]) -> DatasetSummary:
    fields = {f.name for f in dataclasses.fields(DatasetSummary)}
    known = {k: v for k, v in raw.items() if k in fields} if isinstance(raw, dict) else {}
    known.setdefault("source", "uploaded dataset")
    known.setdefault("format", "text" if all("text" in row for row in train) else "messages")
    known["rows"] = len(train)
    known["eval_rows"] = len(evaluation)
    return DatasetSummary(**known)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """The sha256 both sides compare a transferred file by (dataset, checkpoint files, artifacts)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------- chunked upload
def content_range(start: int, length: int, total: int) -> str:
    """The ``Content-Range`` header of a chunk of ``length`` bytes at ``start``."""
    return f"bytes {start}-{start + length - 1}/{total}"


def parse_content_range(value: str) -> tuple[int, int, int]:
    """``bytes start-end/total`` -> (start, end, total), end inclusive; ValueError otherwise."""
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if not match:
        raise ValueError(f"Content-Range must look like 'bytes START-END/TOTAL', got {value!r}")
    start, end, total = (int(g) for g in match.groups())
    if end < start or end >= total:
        raise ValueError(f"Content-Range {value!r} is not inside 0..{total - 1}")
    return start, end, total


def iter_chunks(data: bytes, offset: int = 0, chunk_size: int = MAX_CHUNK_BYTES) -> Iterator[tuple[int, bytes]]:
    """(start, chunk) pairs covering ``data`` from ``offset``: what a resumed upload sends."""
    for start in range(offset, len(data), chunk_size):
        yield start, data[start : start + chunk_size]


# ---------------------------------------------------------------------- the worker's answers, typed
def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True)
class JobStatus:
    """``GET /job`` (and the job part of ``GET /health``): where the worker's one job stands.

    Read leniently: a field a newer or older worker does not send takes its "nothing yet"
    value, so a client never trips over a missing key.
    """

    job_id: str | None
    state: str
    bytes_received: int = 0
    dataset_bytes: int | None = None
    last_seq: int = -1
    checkpoint: str | None = None  # the newest complete checkpoint, as an artifact name

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> JobStatus:
        size = raw.get("dataset_bytes")
        return cls(
            job_id=str(raw["job_id"]) if raw.get("job_id") else None,
            state=str(raw.get("state") or ""),
            bytes_received=_int_or(raw.get("bytes_received"), 0),
            dataset_bytes=_int_or(size, 0) if size is not None else None,
            last_seq=_int_or(raw.get("last_seq"), -1),
            checkpoint=str(raw["checkpoint"]) if raw.get("checkpoint") else None,
        )

    @property
    def has_job(self) -> bool:
        """Whether the dataset arrived (a job that is only being received cannot be followed)."""
        return self.state not in ("", IDLE, RECEIVING)


@dataclass(frozen=True)
class Health(JobStatus):
    """``GET /health``: the worker answers, its version, and its job's status."""

    ok: bool = False
    worker_version: str = ""

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Health:
        status = JobStatus.from_json(raw)
        return cls(**dataclasses.asdict(status), ok=bool(raw.get("ok")), worker_version=str(raw.get("worker_version") or ""))


@dataclass(frozen=True)
class EventsPage:
    """``GET /events``: the events after the cursor, and the job's state when they were read.

    The events stay as the worker sent them (``job_id``, ``seq``, ``time``, ``kind``,
    ``data``): the client copies each into its own log and keeps the pod's record verbatim.
    """

    job_id: str | None
    state: str
    last_seq: int
    more: bool
    events: tuple[dict[str, Any], ...] = field(default=())

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> EventsPage:
        events = raw.get("events") or []
        return cls(
            job_id=str(raw["job_id"]) if raw.get("job_id") else None,
            state=str(raw.get("state") or ""),
            last_seq=_int_or(raw.get("last_seq"), -1),
            more=bool(raw.get("more")),
            events=tuple(dict(e) for e in events if isinstance(e, Mapping)),
        )


@dataclass(frozen=True)
class UploadReceipt:
    """A chunk's answer (``PUT /job/dataset``, ``PUT /artifacts/...``): how much the worker holds now."""

    bytes_received: int

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> UploadReceipt:
        return cls(_int_or(raw.get("bytes_received"), 0))


@dataclass(frozen=True)
class RemoteArtifact:
    """One file in ``GET /artifacts``: its name under the worker's output, size and sha256."""

    name: str
    bytes: int
    sha256: str

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RemoteArtifact:
        return cls(str(raw["name"]), int(raw["bytes"]), str(raw.get("sha256") or ""))


@dataclass(frozen=True)
class BootStatus:
    """Stage 0's answer while a pod boots (``GET /boot``, ``PUT /boot/package``; see ``backends/runpod/stage0.py``).

    Stage 0 serves the worker port before the worker exists; ``stage: "boot"`` tells
    its answers apart from the worker's.
    """

    package: str  # "waiting" until the client's package arrived, then "received"
    install: str  # "after the package", then "not needed", "running", "done" or "failed (N)"
    seconds: float = 0.0  # since stage 0 started
    facts: dict[str, Any] = field(
        default_factory=dict
    )  # the image's torch and CUDA, the GPU and its driver (once the package is there)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> BootStatus:
        facts = raw.get("facts")
        try:
            seconds = float(raw.get("seconds") or 0.0)
        except (TypeError, ValueError):
            seconds = 0.0
        return cls(
            package=str(raw.get("package") or ""),
            install=str(raw.get("install") or ""),
            seconds=seconds,
            facts=dict(facts) if isinstance(facts, Mapping) else {},
        )

    @property
    def waiting_for_package(self) -> bool:
        return self.package == "waiting"

    @property
    def installing(self) -> bool:
        return self.install == "running"
