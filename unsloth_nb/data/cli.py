"""``unsloth-nb data``: look at a dataset where it lives, and put a local one where a pod can read it.

- ``unsloth-nb data describe SOURCE [--split S] [--dataset-config C] [--dataset-revision R]``:
  files, bytes, rows (when the store says) and version, then the first rows of a sample
  through the usual checks;
- ``unsloth-nb data upload FILE s3://bucket/key|volume://<id>/path [--part-size-mb N]``:
  a multipart upload with a progress line, resumed where it stopped when run again;
- ``unsloth-nb data enhance DATA …``: ``unsloth-nb enhance`` (the teacher), same flags, output and exit codes.
"""

from __future__ import annotations

import argparse
import sys
import time

from unsloth_nb.errors import UnslothNbError


class _Refused(UnslothNbError):
    field = "data"


def main(argv: list[str]) -> int:
    if argv[:1] == ["enhance"]:  # the teacher's own parser reads its flags (every teacher: field is one)
        from unsloth_nb.teacher.cli import cmd_enhance

        return cmd_enhance(argv[1:], prog="unsloth-nb data enhance")
    parser = argparse.ArgumentParser(prog="unsloth-nb data", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    describe = commands.add_parser("describe", help="files, size, rows and version of a source, and a sample's rows")
    describe.add_argument("source", help="a file, org/name, hf://datasets/..., s3://... or volume://...")
    describe.add_argument("--split", default="train")
    describe.add_argument("--dataset-config", default=None)
    describe.add_argument("--dataset-revision", default=None)
    upload = commands.add_parser("upload", help="upload a file to S3 or a RunPod network volume (resumable)")
    upload.add_argument("file")
    upload.add_argument("target", help="s3://bucket/key (or a prefix ending in /) or volume://<volume id>/path")
    upload.add_argument("--part-size-mb", type=float, default=None, help="part size in MB (default: 8 MiB or more)")
    commands.add_parser("enhance", help="improve and paraphrase a Q&A file with a teacher model (= unsloth-nb enhance)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) and 2
    if args.command == "describe":
        return _describe(args)
    return _upload(args)


def _describe(args: argparse.Namespace) -> int:
    from unsloth_nb.config import DatasetConfig
    from unsloth_nb.data import format_summary, inspect_dataset
    from unsloth_nb.data.sources import source_for

    source = source_for(args.source, config_name=args.dataset_config, split=args.split, revision=args.dataset_revision)
    print(source.describe().line())
    config = DatasetConfig(path=args.source, split=args.split, config_name=args.dataset_config, revision=args.dataset_revision)
    preview = inspect_dataset(config, n=3)
    if preview.error:
        raise _Refused(preview.error)
    if preview.summary is not None:
        print(format_summary(preview.summary))
    for origin, row in zip(preview.origins, preview.rows, strict=False):
        print(f"  {origin}: {str(row)[:160]}")
    return 0


def _upload(args: argparse.Namespace) -> int:
    from unsloth_nb.data.sources.upload import upload_file

    started = time.monotonic()

    def show(done: int, total: int) -> None:
        rate = done / max(time.monotonic() - started, 1e-6) / 1e6
        sys.stderr.write(f"\r{done / 1e6:,.1f} of {total / 1e6:,.1f} MB ({done / max(total, 1):.0%}, {rate:.1f} MB/s)")
        sys.stderr.flush()

    part = int(args.part_size_mb * 1_000_000) if args.part_size_mb else None
    result = upload_file(args.file, args.target, part_size=part, progress=show)
    sys.stderr.write("\n")
    again = f", resumed: {result.parts - result.parts_sent} part(s) were already there" if result.resumed else ""
    print(f"uploaded {result.bytes:,} bytes to {result.target} in {result.parts} part(s){again}")
    return 0
