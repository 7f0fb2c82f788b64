"""``unsloth-nb runpod volume list|create|ls|upload`` against the emulator's REST v2 volumes and the loopback S3 API."""

from __future__ import annotations

from pathlib import Path

import pytest

from unsloth_nb.backends.runpod.cli import main
from unsloth_nb.testing.runpod_emulator import RunPodEmulator
from unsloth_nb.testing.s3_emulator import LoopbackS3


def test_create_list_upload_and_ls_a_volume(
    runpod_emulator: RunPodEmulator,
    loopback_s3: LoopbackS3,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runpod_emulator.volumes.attach_s3(loopback_s3.env)
    monkeypatch.setenv("UNSLOTH_NB_RUNPOD_S3_ENDPOINT", loopback_s3.url)  # s3api-<dc>.runpod.io, on loopback
    monkeypatch.setenv("RUNPOD_VOLUME_DATACENTER", "US-KS-2")  # wrong on purpose: the command asks RunPod instead
    assert main(["volume", "list"]) == 0
    assert "no network volumes" in capsys.readouterr().out
    assert main(["volume", "create", "data", "--size", "10", "--data-center", "eu-ro-1"]) == 0
    created = capsys.readouterr().out
    volume = created.split()[3]
    assert "10 GB in EU-RO-1" in created
    assert main(["volume", "list"]) == 0
    assert f"{volume}  data  10 GB  EU-RO-1" in capsys.readouterr().out

    big = tmp_path / "rows.jsonl"
    big.write_bytes(b'{"prompt": "q", "completion": "a"}\n' * 400_000)  # 14 MB: two 8 MiB parts
    assert main(["volume", "upload", str(big), f"{volume}/datasets/"]) == 0
    out = capsys.readouterr().out
    assert f"to volume://{volume}/datasets/rows.jsonl in 2 part(s)" in out
    assert main(["volume", "ls", volume]) == 0
    assert f"{big.stat().st_size:,}  datasets/rows.jsonl" in capsys.readouterr().out
    # The file is on the volume a pod mounts, too.
    assert (runpod_emulator.volumes.folder(volume) / "datasets" / "rows.jsonl").read_bytes() == big.read_bytes()


def test_a_volume_runpod_does_not_have_and_a_bad_command_are_refused(
    runpod_emulator: RunPodEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["volume", "ls", "nosuchvol"]) == 2
    assert "RunPod has no network volume nosuchvol; `unsloth-nb runpod volume list`" in capsys.readouterr().err
    assert main(["volume", "shrink"]) == 2
    assert "unknown volume command 'shrink'" in capsys.readouterr().err
    assert main(["volume", "create", "x", "--size", "10"]) == 2
    assert "--data-center" in capsys.readouterr().err
