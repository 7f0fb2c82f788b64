"""Datasets where they live: Hub dataset repos and S3 objects, read by the unmodified huggingface_hub and boto3.

Every remote side is a loopback emulator (the Hub emulator's dataset repos, moto's S3 server).
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from fixtures import SUPERBOWL_TRAIN, WIKISQL_TRAIN, read_jsonl

from unsloth_nb.config import DatasetConfig, TrainConfig
from unsloth_nb.data import inspect_dataset, prepare_dataset
from unsloth_nb.data.sources import HubSource, S3Source, SourceInfo, source_for, source_from_json
from unsloth_nb.data.sources.base import SAMPLE_BYTES
from unsloth_nb.errors import DatasetError
from unsloth_nb.testing.hub_emulator import LoopbackHub, dataset_key
from unsloth_nb.testing.s3_emulator import LoopbackS3


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def qa_rows(count: int, tag: str = "q") -> list[dict[str, Any]]:
    return [{"question": f"{tag} {i}?", "answer": f"answer {i}"} for i in range(count)]


def parquet_bytes(rows: list[dict[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


@pytest.fixture
def hub(loopback_hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> LoopbackHub:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("UNSLOTH_NB_DATA_CACHE", str(tmp_path / "data-cache"))
    return loopback_hub


# ====================================================================== the Hub
def test_a_hub_id_is_read_like_a_file_with_its_rows_named_by_hub_path(hub: LoopbackHub) -> None:
    superbowl = SUPERBOWL_TRAIN.read_bytes()
    hub.add_dataset("org/superbowl", {"data/train-00000-of-00001.jsonl": superbowl, "README.md": b"# card"})
    prepared = prepare_dataset(DatasetConfig(path="org/superbowl"), 512)
    assert len(prepared.train) == len(read_jsonl(SUPERBOWL_TRAIN))
    assert prepared.origins[0] == "hf://datasets/org/superbowl/data/train-00000-of-00001.jsonl:1"
    assert any(
        ("Hub dataset" in line and f"{len(superbowl):,}" in line.replace(",", ",")) or "kB" in line
        for line in prepared.summary.sources
    )


def test_split_config_and_parquet_shards_follow_the_hub_layout(hub: LoopbackHub) -> None:
    hub.add_dataset(
        "org/multi",
        {
            "chat/train/0000.parquet": parquet_bytes(qa_rows(30, "a")),
            "chat/train/0001.parquet": parquet_bytes(qa_rows(20, "b")),
            "chat/test/0000.parquet": parquet_bytes(qa_rows(5, "t")),
            "code/train/0000.parquet": parquet_bytes(qa_rows(7, "c")),
        },
        card={"dataset_info": [{"config_name": "chat", "splits": [{"name": "train", "num_examples": 50}]}]},
    )
    prepared = prepare_dataset(DatasetConfig(path="hf://datasets/org/multi", config_name="chat"), 512)
    assert len(prepared.train) == 50
    assert prepared.origins[-1] == "hf://datasets/org/multi/chat/train/0001.parquet: row 20"
    test = prepare_dataset(DatasetConfig(path="org/multi", config_name="chat", split="test"), 512)
    assert len(test.train) == 5
    info = source_for("org/multi", config_name="chat").describe()
    assert info.rows == 50 and len(info.files) == 2 and info.version == hub.sha(dataset_key("org/multi"))
    with pytest.raises(DatasetError, match="has no split 'validation'; its splits are: test, train"):
        prepare_dataset(DatasetConfig(path="org/multi", config_name="chat", split="validation"), 512)
    with pytest.raises(DatasetError, match="has no config 'math'") as caught:
        prepare_dataset(DatasetConfig(path="org/multi", config_name="math"), 512)
    assert "chat, code" in str(caught.value)


def test_a_sample_is_a_ranged_read_of_the_first_file_only(hub: LoopbackHub) -> None:
    rows = [{"question": "q" * 500 + str(i), "answer": "a"} for i in range(2000)]  # ~1 MB
    hub.add_dataset("org/big", {"train.jsonl": jsonl(rows)})
    preview = inspect_dataset(DatasetConfig(path="org/big"), n=3)
    assert preview.ok, preview.error
    assert 0 < preview.summary.rows < 2000  # only the sample's rows, whole rows only
    assert preview.summary.sources[0].startswith("hf://datasets/org/big: Hub dataset")
    assert "sample" in preview.summary.sources[0]
    reads = [read for read in hub.reads if read.startswith("GET")]
    assert reads == [f"GET {dataset_key('org/big')}/train.jsonl bytes=0-{SAMPLE_BYTES - 1}"]


def test_private_gated_missing_and_bad_revision_are_refused_naming_what_to_change(
    hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.token = "hf_loopback"
    hub.add_dataset("org/private", {"train.jsonl": jsonl(qa_rows(3))}, private=True)
    hub.add_dataset("org/gated", {"train.jsonl": jsonl(qa_rows(3))}, gated=True)
    with pytest.raises(DatasetError, match=r"Hub dataset org/private not found \(or private\)") as caught:
        prepare_dataset(DatasetConfig(path="org/private"), 512)
    assert "HF_TOKEN" in str(caught.value)
    with pytest.raises(DatasetError, match="Hub dataset org/nothing not found"):
        prepare_dataset(DatasetConfig(path="org/nothing"), 512)
    with pytest.raises(DatasetError, match="gated") as caught:
        prepare_dataset(DatasetConfig(path="org/gated"), 512)
    assert "HF_TOKEN" in str(caught.value)
    monkeypatch.setenv("HF_TOKEN", "hf_loopback")
    with pytest.raises(DatasetError, match="has no revision 'v9'"):
        prepare_dataset(DatasetConfig(path="org/private", revision="v9"), 512)
    assert len(prepare_dataset(DatasetConfig(path="org/private"), 512).train) == 3
    assert len(prepare_dataset(DatasetConfig(path="hf://datasets/org/gated@main"), 512).train) == 3
    assert "hf_loopback" not in json.dumps(source_for("org/private").to_json())


def test_a_broken_row_in_a_hub_file_names_the_hub_file_and_line(hub: LoopbackHub) -> None:
    data = jsonl(qa_rows(20)).replace(b'{"question": "q 11?"', b'{"question": "q 11?" oops', 1)
    hub.add_dataset("org/broken", {"train.jsonl": data})
    with pytest.raises(DatasetError) as caught:
        prepare_dataset(DatasetConfig(path="org/broken"), 512)
    assert "hf://datasets/org/broken/train.jsonl:12: not valid JSON" in str(caught.value)


def test_a_local_folder_shaped_like_a_hub_id_stays_local(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "train"
    folder.mkdir(parents=True)
    assert source_for("data/train", base_dir=str(tmp_path)).kind == "local"
    assert source_for("data/train.jsonl", base_dir=str(tmp_path)).kind == "local"
    assert source_for("org/name", base_dir=str(tmp_path)).kind == "hub"


# ====================================================================== S3
def test_an_s3_object_and_a_prefix_of_shards_are_read_in_key_order(loopback_s3: LoopbackS3) -> None:
    loopback_s3.put("data", "qa/one.jsonl", SUPERBOWL_TRAIN.read_bytes())
    loopback_s3.put("data", "shards/part-0001.csv", b"question,answer\nq2,a2\nq3,a3\n")
    loopback_s3.put("data", "shards/part-0000.csv", b"question,answer\nq0,a0\nq1,a1\n")
    loopback_s3.put("data", "shards/_SUCCESS", b"")
    single = prepare_dataset(DatasetConfig(path="s3://data/qa/one.jsonl"), 512)
    assert len(single.train) == len(read_jsonl(SUPERBOWL_TRAIN))
    assert single.origins[0] == "s3://data/qa/one.jsonl:1"
    shards = prepare_dataset(DatasetConfig(path="s3://data/shards"), 512)
    assert [row["messages"][0]["content"] for row in shards.train] == ["q0", "q1", "q2", "q3"]
    assert shards.origins[2] == "s3://data/shards/part-0001.csv:2"
    info = S3Source.parse("s3://data/shards/").describe()
    assert info.files == ["s3://data/shards/part-0000.csv", "s3://data/shards/part-0001.csv"]
    assert info.bytes == 2 * len(b"question,answer\nq0,a0\nq1,a1\n")


def test_an_s3_version_changes_with_the_object(loopback_s3: LoopbackS3) -> None:
    loopback_s3.put("data", "qa.jsonl", jsonl(qa_rows(3)))
    before = S3Source.parse("s3://data/qa.jsonl").describe().version
    assert S3Source.parse("s3://data/qa.jsonl").describe().version == before
    loopback_s3.put("data", "qa.jsonl", jsonl(qa_rows(4)))
    assert S3Source.parse("s3://data/qa.jsonl").describe().version != before
    assert len(prepare_dataset(DatasetConfig(path="s3://data/qa.jsonl"), 512).train) == 4  # not the cached copy


def test_a_broken_row_12345_of_an_s3_object_is_named_by_its_s3_line(loopback_s3: LoopbackS3) -> None:
    lines = [json.dumps(row) for row in qa_rows(13_000)]
    lines[12_344] = lines[12_344][:-1]  # row 12,345 loses its closing brace
    loopback_s3.put("bucket", "big.jsonl", ("\n".join(lines) + "\n").encode())
    with pytest.raises(DatasetError) as caught:
        prepare_dataset(DatasetConfig(path="s3://bucket/big.jsonl"), 512)
    assert "s3://bucket/big.jsonl:12345: not valid JSON" in str(caught.value)
    assert "1 of 13,000 rows" in str(caught.value)


def test_missing_bucket_object_and_credentials_each_say_what_to_change(
    loopback_s3: LoopbackS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    loopback_s3.put("data", "qa.jsonl", jsonl(qa_rows(3)))
    with pytest.raises(DatasetError, match="the bucket 'nobucket' does not exist"):
        prepare_dataset(DatasetConfig(path="s3://nobucket/qa.jsonl"), 512)
    with pytest.raises(DatasetError, match=r"s3://data/missing.jsonl: no such object"):
        prepare_dataset(DatasetConfig(path="s3://data/missing.jsonl"), 512)
    with pytest.raises(DatasetError, match="no data file"):
        prepare_dataset(DatasetConfig(path="s3://data/nothing/"), 512)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(DatasetError, match="no S3 credentials found") as caught:
        prepare_dataset(DatasetConfig(path="s3://data/qa.jsonl"), 512)
    assert "AWS_ACCESS_KEY_ID" in str(caught.value)


def test_a_network_volume_is_read_through_its_s3_api_and_from_its_mount_on_a_pod(
    loopback_s3: LoopbackS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    loopback_s3.put("vol123", "datasets/qa.jsonl", jsonl(qa_rows(6)))
    with pytest.raises(DatasetError, match="RUNPOD_VOLUME_DATACENTER"):
        source_for("volume://vol123/datasets/qa.jsonl")
    monkeypatch.setenv("RUNPOD_VOLUME_DATACENTER", "EU-RO-1")
    source = source_for("volume://vol123/datasets/qa.jsonl")
    assert source.to_json()["endpoint"] == "https://s3api-eu-ro-1.runpod.io/"
    monkeypatch.setenv("UNSLOTH_NB_RUNPOD_S3_ENDPOINT", loopback_s3.url)
    prepared = prepare_dataset(DatasetConfig(path="volume://vol123/datasets/qa.jsonl"), 512)
    assert prepared.origins[0] == "volume://vol123/datasets/qa.jsonl:1" and len(prepared.train) == 6
    mount = tmp_path / "workspace"
    (mount / "datasets").mkdir(parents=True)
    (mount / "datasets" / "qa.jsonl").write_bytes(jsonl(qa_rows(2)))  # what the pod sees at its mount path
    monkeypatch.setenv("UNSLOTH_NB_VOLUME_MOUNT", str(mount))
    monkeypatch.setenv("RUNPOD_POD_ID", "pod-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the S3 API is not used on the pod
    files = source_from_json(source_for("volume://vol123/datasets/qa.jsonl").to_json()).open_full()
    assert [f.path for f in files] == [mount / "datasets" / "qa.jsonl"]


# ====================================================================== any process
def test_a_source_rebuilt_from_its_json_reads_the_same_rows_and_holds_no_secret(
    hub: LoopbackHub, loopback_s3: LoopbackS3
) -> None:
    hub.add_dataset("org/qa", {"train.jsonl": jsonl(qa_rows(4))})
    loopback_s3.put("data", "qa.jsonl", jsonl(qa_rows(5)))
    for text, count in (("org/qa", 4), ("s3://data/qa.jsonl", 5), (str(SUPERBOWL_TRAIN), 40)):
        original = source_for(text)
        info = original.describe()
        description = json.loads(json.dumps(original.to_json()))
        assert "loopback-secret-key" not in json.dumps(description)
        rebuilt = source_from_json(description)
        assert rebuilt.describe().version == info.version
        files = rebuilt.open_full()
        assert sum(len(read_jsonl(f.path)) for f in files) == count
    described = source_for("org/qa")
    described.describe()  # resolves the commit: a pod given this JSON reads exactly these rows
    assert source_from_json(described.to_json()).to_json()["revision"] == hub.sha(dataset_key("org/qa"))


def test_source_info_line_says_kind_files_rows_and_size() -> None:
    line = SourceInfo("hub", "hf://datasets/o/n", ["a", "b"], bytes=2_500_000, rows=10_000, version="abcdef1234567").line()
    assert line == "hf://datasets/o/n: Hub dataset, 2 files, 10,000 rows, 2.5 MB, revision abcdef1234"
    assert HubSource.parse("hf://datasets/o/n@v1/data", None, "train", None).revision == "v1"


# ====================================================================== mixing
def test_a_mix_keeps_the_scarcest_source_whole_and_samples_the_others(tmp_path: Path) -> None:
    (tmp_path / "reasoning.jsonl").write_bytes(jsonl(qa_rows(30, "r")))
    (tmp_path / "chat.jsonl").write_bytes(jsonl(qa_rows(200, "c")))
    config = TrainConfig.from_dict({"model": "m/x", "dataset": [{"path": "reasoning.jsonl", "weight": "75%"}, "chat.jsonl=25%"]})
    prepared = prepare_dataset(config.dataset, 512, base_dir=str(tmp_path))
    firsts = [row["messages"][0]["content"][0] for row in prepared.train]
    assert firsts.count("r") == 30 and firsts.count("c") == 10
    assert firsts[:30] != ["r"] * 30  # shuffled
    lines = prepared.summary.sources
    assert "mix: reasoning.jsonl: 30 of 30 rows (75%; weight 75%, Q&A)" in lines
    assert "mix: chat.jsonl: 10 of 200 rows (25%; weight 25%, Q&A)" in lines
    assert "mix: 40 rows in all, shuffled with dataset.seed=3407" in lines
    again = prepare_dataset(config.dataset, 512, base_dir=str(tmp_path))
    assert again.train == prepared.train  # the seed fixes the draw
    other = prepare_dataset(DatasetConfig(mix=config.dataset.mix, seed=1), 512, base_dir=str(tmp_path))
    assert other.train != prepared.train


def test_a_mix_of_a_hub_dataset_and_an_s3_object(hub: LoopbackHub, loopback_s3: LoopbackS3) -> None:
    hub.add_dataset("org/a", {"train.jsonl": jsonl(qa_rows(10, "h"))})
    loopback_s3.put("data", "b.jsonl", jsonl(qa_rows(10, "s")))
    prepared = prepare_dataset(DatasetConfig(mix=["org/a=1", "s3://data/b.jsonl=1"]), 512)
    assert len(prepared.train) == 20
    assert {o.split(":", 1)[0] for o in prepared.origins} == {"hf", "s3"}


def test_mix_mistakes_are_refused_naming_the_field() -> None:
    _, errors = TrainConfig.checked({"model": "m/x", "dataset": ["a.jsonl=70%", "b.jsonl=20%"]})
    assert [str(e) for e in errors if e.field == "dataset.mix"] == ["dataset.mix: the percentages add up to 90%, not 100%"]
    _, errors = TrainConfig.checked({"model": "m/x", "dataset": {"path": "a.jsonl", "mix": ["b.jsonl=1"]}})
    assert any("not both" in str(e) for e in errors)
    _, errors = TrainConfig.checked({"model": "m/x", "dataset": ["a.jsonl=lots"]})
    assert any(e.field == "dataset.mix[0]" and "not a number" in str(e) for e in errors)


def test_text_and_conversations_cannot_be_mixed(tmp_path: Path) -> None:
    (tmp_path / "qa.jsonl").write_bytes(jsonl(qa_rows(5)))
    (tmp_path / "text.jsonl").write_bytes(WIKISQL_TRAIN.read_bytes())
    with pytest.raises(DatasetError, match="plain text and conversations cannot be mixed"):
        prepare_dataset(DatasetConfig(mix=["qa.jsonl=1", "text.jsonl=1"]), 512, base_dir=str(tmp_path))


def test_the_panel_preview_shows_the_source_type_and_says_it_checked_a_sample(hub: LoopbackHub) -> None:
    from unsloth_nb.ui.panel_html import preview_html as _preview_html

    hub.add_dataset("org/qa", {"train.jsonl": jsonl(qa_rows(5))})
    shown = _preview_html(inspect_dataset(DatasetConfig(path="org/qa"), n=3))
    assert "hf://datasets/org/qa: Hub dataset" in shown
    assert "every row of the sample (the rest is checked where training runs) can be trained on" in shown
    assert "q 2?" in shown  # the sample's rows are previewed


def test_a_pod_plan_proposes_s3_or_a_volume_for_a_large_local_dataset(tmp_path: Path) -> None:
    from unsloth_nb.data.remote import upload_advice

    small = tmp_path / "small.jsonl"
    small.write_bytes(jsonl(qa_rows(3)))
    assert upload_advice(DatasetConfig(path="small.jsonl"), str(tmp_path)) is None
    with (tmp_path / "big.jsonl").open("wb") as handle:
        handle.truncate(2_000_000_000)  # sparse: 2 GB on paper, nothing on disk
    advice = upload_advice(DatasetConfig(path="big.jsonl"), str(tmp_path))
    assert advice is not None and "2.0 GB" in advice and "about 13 min at 20 Mbit/s" in advice and "s3://" in advice
    assert upload_advice(DatasetConfig(path="s3://bucket/big.jsonl"), str(tmp_path)) is None


# ====================================================================== uploads
def test_an_interrupted_multipart_upload_resumes_sending_only_the_missing_parts(loopback_s3: LoopbackS3, tmp_path: Path) -> None:
    from unsloth_nb.data.sources.upload import MIN_PART_BYTES, upload_file

    rows = qa_rows(300_000)  # about 13 MB of JSON Lines: two parts of 8 MiB
    local = tmp_path / "big.jsonl"
    local.write_bytes(jsonl(rows))
    loopback_s3.client().create_bucket(Bucket="data")
    seen: list[tuple[int, int]] = []

    def cut_after_first_part(done: int, total: int) -> None:
        seen.append((done, total))
        if done >= MIN_PART_BYTES:
            raise KeyboardInterrupt  # the user's Ctrl+C, mid-upload

    with pytest.raises(KeyboardInterrupt):
        upload_file(local, "s3://data/uploads/", progress=cut_after_first_part)
    assert seen[-1] == (MIN_PART_BYTES, local.stat().st_size)
    resumed = upload_file(local, "s3://data/uploads/", progress=lambda done, total: seen.append((done, total)))
    assert (resumed.parts, resumed.parts_sent, resumed.resumed) == (2, 1, True)
    assert seen[-1] == (local.stat().st_size, local.stat().st_size)
    assert loopback_s3.client().get_object(Bucket="data", Key="uploads/big.jsonl")["Body"].read() == local.read_bytes()
    assert S3Source.parse("s3://data/uploads/big.jsonl").describe().bytes == local.stat().st_size


def test_an_upload_to_a_missing_bucket_names_it(loopback_s3: LoopbackS3, tmp_path: Path) -> None:
    from unsloth_nb.data.sources.upload import part_size_for, upload_file

    local = tmp_path / "qa.jsonl"
    local.write_bytes(jsonl(qa_rows(3)))
    with pytest.raises(DatasetError, match="the bucket 'nowhere' does not exist"):
        upload_file(local, "s3://nowhere/qa.jsonl")
    assert part_size_for(100 * 1024**3) == math.ceil(100 * 1024**3 / 10_000)  # 100 GiB: parts grow to stay under 10,000
    with pytest.raises(DatasetError, match="500 MB"):
        part_size_for(10, 600 * 1000 * 1000)


def test_the_data_command_describes_a_remote_source_and_uploads_a_file(
    loopback_s3: LoopbackS3, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from unsloth_nb import cli

    local = tmp_path / "qa.jsonl"
    local.write_bytes(jsonl(qa_rows(4)))
    loopback_s3.client().create_bucket(Bucket="data")
    assert cli.main(["data", "upload", str(local), "s3://data/sets/"]) == 0
    assert "uploaded" in capsys.readouterr().out
    assert cli.main(["data", "describe", "s3://data/sets/qa.jsonl"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("s3://data/sets/qa.jsonl: S3,") and "4 rows" in out and "s3://data/sets/qa.jsonl:1:" in out
    assert cli.main(["data", "describe", "s3://data/none.jsonl"]) == 2
    assert "no such object" in capsys.readouterr().err


def test_the_mix_flag_and_a_yaml_list_read_the_same(tmp_path: Path) -> None:
    from unsloth_nb.config.files import parse_yaml
    from unsloth_nb.flags import read_train_args

    config, _, mistakes = read_train_args(["--model", "m/x", "--dataset-mix", "a.jsonl=75%,org/chat=25%", "--dataset-seed", "7"])
    assert mistakes == [] and config.dataset.mix == ["a.jsonl=75%", "org/chat=25%"] and config.dataset.seed == 7
    text = "model: m/x\ndataset:\n  - {path: a.jsonl, weight: 75%}\n  - {path: org/chat, weight: 25%}\n"
    from_yaml = TrainConfig.from_dict(parse_yaml(text, "cell"))
    assert from_yaml.dataset.mix == config.dataset.mix and from_yaml.dataset.path == ""


def test_a_wrong_s3_key_is_refused_naming_the_variables_to_fix(loopback_s3: LoopbackS3, monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_s3.put("data", "qa.jsonl", jsonl(qa_rows(3)))
    access, secret = loopback_s3.check_keys()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret[:-2] + "xx")
    with pytest.raises(DatasetError, match=r"the S3 credentials were refused \(SignatureDoesNotMatch\)") as caught:
        prepare_dataset(DatasetConfig(path="s3://data/qa.jsonl"), 512)
    assert "AWS_SECRET_ACCESS_KEY" in str(caught.value) and secret not in str(caught.value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOSUCHKEY0000000")
    with pytest.raises(DatasetError, match=r"refused \(InvalidAccessKeyId\)"):
        prepare_dataset(DatasetConfig(path="s3://data/qa.jsonl"), 512)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    assert len(prepare_dataset(DatasetConfig(path="s3://data/qa.jsonl"), 512).train) == 3


# ====================================================================== the reference a pod reads
def test_the_reference_is_stable_and_a_changed_source_is_refused_where_it_is_read(loopback_s3: LoopbackS3) -> None:
    from unsloth_nb.data.remote import prepare_from_sample, read_reference
    from unsloth_nb.worker.protocol import pack_dataset, unpack_prepared

    loopback_s3.put("data", "qa.jsonl", jsonl(qa_rows(30)))
    config = DatasetConfig(path="s3://data/qa.jsonl")
    sent = pack_dataset(prepare_from_sample(config, 512))
    assert pack_dataset(prepare_from_sample(config, 512)) == sent  # what a reattaching process compares
    assert len(sent) < 4096 and b"loopback-secret-key" not in sent
    reference = unpack_prepared(sent).reference
    assert reference is not None and len(read_reference(reference).train) == 30  # the pod's full read
    loopback_s3.put("data", "qa.jsonl", jsonl(qa_rows(31)))
    assert pack_dataset(prepare_from_sample(config, 512)) != sent
    with pytest.raises(DatasetError, match=r"s3://data/qa\.jsonl changed since the job was planned"):
        read_reference(reference)
