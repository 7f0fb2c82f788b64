"""Client bytes up for a pod job's dataset: a local file, the same rows on the Hub, the same on S3.

A pod job with a local dataset uploads every validated row (the packed dataset). With a
Hub dataset id or an ``s3://`` source, preflight reads a sample here and uploads only a
reference (the source, its revision or ETags, the config), and the pod reads the rows
itself. This script builds a JSON Lines file of about ``--mb`` MB of Q&A rows, puts the
same bytes on the loopback Hub and the loopback S3 server, and runs each source through
the code preflight runs (prepare_dataset / prepare_from_sample, then the worker's
pack_dataset), reporting the bytes the client would upload and the bytes it downloaded
to check the sample. The job request itself (config and secrets, a few kB) is the same
for all three and not counted.

Run: python benchmarks/dataset_bytes_up.py [--mb 100]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import offline

TARGET_REMOTE_BYTES = 4096


def build_rows(path: Path, megabytes: float) -> int:
    rows = 0
    with path.open("w", encoding="utf-8") as handle:
        while handle.tell() < megabytes * 1_000_000:
            answer = f"Answer {rows}: " + "the quick brown fox jumps over the lazy dog " * 4
            handle.write(json.dumps({"question": f"Question number {rows}?", "answer": answer}) + "\n")
            rows += 1
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=100.0, help="dataset size in MB (default 100)")
    args = parser.parse_args()
    offline()
    scratch = Path(tempfile.mkdtemp(prefix="unsloth-nb-bytes-up-"))
    os.environ["HF_HUB_CACHE"] = str(scratch / "hf-cache")
    os.environ["UNSLOTH_NB_DATA_CACHE"] = str(scratch / "data-cache")

    from unsloth_nb.config import DatasetConfig
    from unsloth_nb.data import prepare_dataset
    from unsloth_nb.data.remote import prepare_from_sample
    from unsloth_nb.testing.hub_emulator import LoopbackHub
    from unsloth_nb.testing.s3_emulator import LoopbackS3
    from unsloth_nb.worker.protocol import pack_dataset

    local = scratch / "qa.jsonl"
    rows = build_rows(local, args.mb)
    data = local.read_bytes()
    print(f"dataset: {len(data) / 1e6:.1f} MB, {rows:,} rows\n")
    results: list[tuple[str, int, int, float]] = []

    started = time.perf_counter()
    packed = pack_dataset(prepare_dataset(DatasetConfig(path=str(local)), 512))
    results.append(("local file", len(packed), 0, time.perf_counter() - started))

    with LoopbackHub() as hub, LoopbackS3() as s3:
        os.environ.update(HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0", **s3.env)
        hub.add_dataset("bench/qa", {"data/train-00000-of-00001.jsonl": data})
        s3.put("bench", "qa.jsonl", data)
        for label, source in (("Hub dataset id", "bench/qa"), ("s3:// object", "s3://bench/qa.jsonl")):
            started = time.perf_counter()
            prepared = prepare_from_sample(DatasetConfig(path=source), 512)
            packed = pack_dataset(prepared)
            elapsed = time.perf_counter() - started
            source_json = prepared.pinned[source]
            from unsloth_nb.data.sources import source_from_json

            down = sum(f.path.stat().st_size for f in source_from_json(dict(source_json)).sample())
            results.append((label, len(packed), down, elapsed))

    print("| source | client bytes up (dataset) | client bytes down (sample) | preflight time | target |")
    print("|---|---:|---:|---:|---|")
    met = True
    for label, up, down, elapsed in results:
        target = "—" if label == "local file" else f"≤ {TARGET_REMOTE_BYTES:,} B"
        ok = label == "local file" or up <= TARGET_REMOTE_BYTES
        met = met and ok
        print(f"| {label} | {up:,} B | {down:,} B | {elapsed:.1f} s | {target} {'met' if ok else 'MISSED'} |")
    print(f"\nresult: {'met' if met else 'missed'} (remote sources upload a reference only)")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
