"""Remote datasets on a pod: validated here from a sample, read in full where training runs.

For a job that trains elsewhere (a pod), :func:`prepare_from_sample` reads only the first
rows of each remote source (Hub, S3, network volume) through the same checks as a
local file, so a broken row near the start or a wrong column is refused before anything
is rented, and estimates the whole dataset's rows and tokens for the plan (from the
Hub's row count when it states one, else from the sample's bytes against the total).
The result carries a ``reference``: the dataset config and each source's JSON with the
revision, ETags and sizes seen here. That reference is all that is uploaded; the pod's
worker calls :func:`read_reference`, which reads every row there, runs the full
validation (its errors are the same ``file:line`` messages, raised before any training
step) and refuses a source that changed since preflight.

Mixes and jobs with a judge (which holds questions out of the rows before training) are
read in full where preflight runs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from unsloth_nb.config import DatasetConfig
from unsloth_nb.data.pipeline import prepare_dataset
from unsloth_nb.data.records import PreparedDataset
from unsloth_nb.data.sources import is_remote, source_from_json
from unsloth_nb.errors import DatasetError

REFERENCE_VERSION = 1

#: A local dataset above this size makes a pod job's plan propose S3 or a network volume. At a home
#: connection's 20 Mbit/s upstream, 1 GB takes about 7 minutes to upload while the rented GPU waits.
PROPOSE_REMOTE_ABOVE_BYTES = 1_000_000_000
ASSUMED_UPLOAD_BITS_PER_S = 20_000_000


def can_read_remotely(config: DatasetConfig, base_dir: str | None) -> bool:
    """Every source of ``config`` is remote (a pod can reach it), so none need travel from here."""
    if config.mix or not config.path:
        return False
    paths = [config.path] + ([config.eval_path] if config.eval_path else [])
    return all(is_remote(path, base_dir) for path in paths)


def prepare_from_sample(config: DatasetConfig, max_seq_length: int, base_dir: str | None = None) -> PreparedDataset:
    """The sample's rows, validated; a summary estimated for the whole dataset; the reference to read it elsewhere."""
    prepared = prepare_dataset(config, max_seq_length, base_dir=base_dir, sample=True)
    _estimate_whole(prepared, config)
    prepared.reference = {
        "version": REFERENCE_VERSION,
        "dataset": dataclasses.asdict(config),
        "max_seq_length": max_seq_length,
        "pinned": prepared.pinned,
    }
    return prepared


def read_reference(reference: dict[str, Any]) -> PreparedDataset:
    """Every row of a reference's sources, read and validated in this process (a pod's worker)."""
    if reference.get("version") != REFERENCE_VERSION:
        raise DatasetError(f"a dataset reference of version {reference.get('version')!r} cannot be read here")
    config = DatasetConfig(**reference["dataset"])
    return prepare_dataset(config, int(reference["max_seq_length"]), pinned=reference["pinned"])


def _estimate_whole(prepared: PreparedDataset, config: DatasetConfig) -> None:
    """Scale the sample's counts to the whole source: rows from the Hub's count, else by bytes."""
    source = prepared.pinned.get(config.path)
    if source is None:
        return
    remote = source_from_json(dict(source))
    info = remote.describe()
    sample_bytes = sum(f.path.stat().st_size for f in remote.sample())
    records = prepared.summary.rows + prepared.summary.eval_rows + prepared.summary.skipped
    if info.rows is not None and records:
        factor = info.rows / records
        how = "the Hub's row count"
    elif info.bytes and sample_bytes and info.bytes > sample_bytes and len(info.files) >= 1:
        factor = info.bytes / sample_bytes
        how = f"the sample's {sample_bytes:,} of {info.bytes:,} bytes"
    else:
        return  # the sample was the whole dataset
    summary = prepared.summary
    sampled = summary.rows
    for name in ("rows", "eval_rows", "skipped", "tokens", "truncated_rows", "tokens_cut", "long_dropped"):
        setattr(summary, name, round(getattr(summary, name) * factor))
    if config.max_rows is not None:
        summary.rows = min(summary.rows, config.max_rows)
    summary.sources.append(
        f"rows and tokens estimated from a sample of {sampled:,} rows ({how}); every row is read and checked "
        "where training runs, before the first step"
    )


def upload_advice(config: DatasetConfig, base_dir: str | None) -> str | None:
    """For a pod job: a plan line proposing S3 or a network volume when the local dataset is large, else None."""
    from unsloth_nb.data.sources import LocalSource

    paths = [config.path] if config.path else [entry.rpartition("=")[0] or entry for entry in config.mix]
    local = [path for path in paths if path and not is_remote(path, base_dir)]
    try:
        size = sum(LocalSource(path, base_dir).describe().bytes or 0 for path in local)
    except DatasetError:
        return None
    if size <= PROPOSE_REMOTE_ABOVE_BYTES:
        return None
    seconds = size * 8 / ASSUMED_UPLOAD_BITS_PER_S
    return (
        f"The dataset is {size / 1e9:.1f} GB: uploading it from here takes about {seconds / 60:.0f} min at "
        f"{ASSUMED_UPLOAD_BITS_PER_S / 1e6:.0f} Mbit/s while the pod bills. Put it on S3 (s3://bucket/key), the Hub "
        "(org/name) or a RunPod network volume (volume://<id>/path) and the pod reads it itself."
    )
