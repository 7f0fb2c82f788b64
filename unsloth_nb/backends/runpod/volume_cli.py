"""``unsloth-nb runpod volume list|create|ls|upload``: network volumes from a terminal.

``list`` and ``create`` use REST v2 (``/v2/network-volumes``); ``ls`` and ``upload`` use the
volume's S3-compatible API (``https://s3api-<dc>.runpod.io/``, bucket = volume id), whose
data centre is read from REST v2 first, so no ``RUNPOD_VOLUME_DATACENTER`` is needed. The
S3 API has its own key pair (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``: RunPod's
``user_...``/``rps_...``). ``upload`` is the resumable multipart upload of
``unsloth-nb data upload`` (parts of at most 500 MB, a progress line, an interrupted
upload continues where it stopped when run again).
"""

from __future__ import annotations

import argparse
import json
import os

from unsloth_nb.errors import UnslothNbError

USAGE = """usage: unsloth-nb runpod volume <command>

  list [--json]                                   the account's network volumes
  create NAME --size GB --data-center DC [--type STANDARD|HIGH_PERFORMANCE]
  ls VOLUME_ID[/PATH]                             files on a volume (through its S3 API)
  upload FILE VOLUME_ID[/PATH] [--part-size-mb N] upload a file (multipart, resumable)
"""


class VolumeCommandError(UnslothNbError):
    """A bad ``runpod volume`` command line."""


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    commands = {"list": _list, "create": _create, "ls": _ls, "upload": _upload}
    command = commands.get(argv[0])
    if command is None:
        raise VolumeCommandError(f"unknown volume command {argv[0]!r}; one of: {', '.join(commands)}")
    return command(argv[1:])


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so the exit code is the command's."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise VolumeCommandError(f"{self.prog}: {message}")


def _parser(prog: str) -> argparse.ArgumentParser:
    return _Parser(prog=f"unsloth-nb runpod volume {prog}")


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    return parser.parse_args(argv)


def _list(argv: list[str]) -> int:
    from unsloth_nb.backends.runpod.volumes import VolumesClient

    parser = _parser("list")
    parser.add_argument("--json", action="store_true")
    args = _parse(parser, argv)
    volumes = VolumesClient().list()
    if args.json:
        print(json.dumps([v.__dict__ for v in volumes], indent=2))
        return 0
    if not volumes:
        print("no network volumes (create one: unsloth-nb runpod volume create NAME --size GB --data-center DC)")
        return 0
    rows = [[v.id, v.name, f"{v.size_gb} GB", v.data_center, v.type] for v in volumes]
    widths = [max(len(r[i]) for r in [["ID", "NAME", "SIZE", "DATA CENTRE", "TYPE"], *rows]) for i in range(5)]
    for row in [["ID", "NAME", "SIZE", "DATA CENTRE", "TYPE"], *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _create(argv: list[str]) -> int:
    from unsloth_nb.backends.runpod.volumes import VolumesClient

    parser = _parser("create")
    parser.add_argument("name")
    parser.add_argument("--size", type=int, required=True, help="GB (it can only grow later)")
    parser.add_argument("--data-center", required=True, help="e.g. EU-RO-1 (one with an S3 API, to upload to it)")
    parser.add_argument("--type", default="STANDARD", choices=("STANDARD", "HIGH_PERFORMANCE"))
    args = _parse(parser, argv)
    volume = VolumesClient().create(args.name, args.size, args.data_center, args.type)
    print(f"created network volume {volume.id} ({volume.name}, {volume.size_gb} GB in {volume.data_center})")
    print(f"  use it: --dataset volume://{volume.id}/<path>  or  --network-volume {volume.id}")
    return 0


def _located(text: str) -> tuple[str, str, str]:
    """(volume id, path, data centre) for ``VOLUME_ID[/PATH]`` (or ``volume://...``), the centre asked of RunPod."""
    from unsloth_nb.backends.runpod.volume_placement import volume_data_centre

    volume, _, path = text.removeprefix("volume://").partition("/")
    if not volume:
        raise VolumeCommandError(f"{text}: expected VOLUME_ID[/PATH]")
    centre = volume_data_centre(volume)
    os.environ["RUNPOD_VOLUME_DATACENTER"] = centre  # what the S3 source of this command's process reads
    return volume, path, centre


def _ls(argv: list[str]) -> int:
    from unsloth_nb.backends.runpod.volumes import s3_endpoint
    from unsloth_nb.data.sources.s3 import VolumeSource

    parser = _parser("ls")
    parser.add_argument("where", help="VOLUME_ID[/PATH]")
    args = _parse(parser, argv)
    volume, path, centre = _located(args.where)
    source = VolumeSource(volume, path, endpoint=s3_endpoint(centre), region=centre)
    client = source._client()
    count = 0
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=volume, Prefix=path):
            for item in page.get("Contents") or []:
                print(f"{int(item['Size']):>14,}  {item['Key']}")
                count += 1
    except Exception as exc:
        raise source._error(exc, path) from None
    if not count:
        print(f"nothing under volume://{volume}/{path}")
    return 0


def _upload(argv: list[str]) -> int:
    from unsloth_nb.data.cli import _upload as upload

    parser = _parser("upload")
    parser.add_argument("file")
    parser.add_argument("target", help="VOLUME_ID[/PATH] (a PATH ending in / keeps the file's name)")
    parser.add_argument("--part-size-mb", type=float, default=None)
    args = _parse(parser, argv)
    volume, path, _ = _located(args.target)
    target = f"volume://{volume}/{path or os.path.basename(args.file)}"
    return upload(argparse.Namespace(file=args.file, target=target, part_size_mb=args.part_size_mb))


__all__ = ["main"]
