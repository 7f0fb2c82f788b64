"""What keeping a serverless checkpoint in a store costs the worker: upload (training waits for it) and resume.

A checkpoint folder shaped like the trainer's (adapter weights, optimizer state, a few small JSON files) is
uploaded through :class:`unsloth_nb.worker.checkpoint_store.CheckpointStore` to a loopback S3 server (moto),
then found and downloaded as a replacement worker would. On loopback this measures our code path and
boto3/moto, not a network: on RunPod, divide the size by the bandwidth between the worker and the store.

    .venv/bin/python benchmarks/serverless_checkpoint_store.py           # 256 MB (a third weights, two thirds optimizer state)
    .venv/bin/python benchmarks/serverless_checkpoint_store.py --quick   # 32 MB
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def make_checkpoint(folder: Path, megabytes: int) -> Path:
    path = folder / "checkpoint-100"
    path.mkdir(parents=True)
    third = megabytes * 1_000_000 // 3
    (path / "adapter_model.safetensors").write_bytes(os.urandom(third))
    (path / "optimizer.pt").write_bytes(os.urandom(2 * third))  # Adam keeps two moments per trained weight
    for name in ("trainer_state.json", "adapter_config.json", "training_args.bin", "rng_state.pth", "scheduler.pt"):
        (path / name).write_bytes(b"{}" * 512)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mb", type=int, default=None, help="checkpoint size in MB")
    args = parser.parse_args()
    megabytes = args.mb or (32 if args.quick else 256)

    from unsloth_nb.testing.s3_emulator import LoopbackS3
    from unsloth_nb.worker.checkpoint_store import CheckpointStore

    with LoopbackS3() as s3, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(s3.env)
        s3.client().create_bucket(Bucket="ckpts")
        store = CheckpointStore.from_json({"bucket": "ckpts", "key": "runs", "endpoint": s3.url, "region": "us-east-1"}, "job-1")
        assert store is not None
        checkpoint = make_checkpoint(Path(tmp) / "worker", megabytes)
        started = time.perf_counter()
        sent = store.upload(checkpoint)
        upload = time.perf_counter() - started
        started = time.perf_counter()
        name = store.newest()
        assert name == checkpoint.name
        store.download(name, Path(tmp) / "replacement")
        resume = time.perf_counter() - started
    print(f"checkpoint store on loopback S3 (moto), {sent / 1e6:.0f} MB checkpoint")
    print(f"  upload (training waits):  {upload:6.2f} s  ({sent / 1e6 / upload:6.1f} MB/s)")
    print(f"  find + download (resume): {resume:6.2f} s  ({sent / 1e6 / resume:6.1f} MB/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
