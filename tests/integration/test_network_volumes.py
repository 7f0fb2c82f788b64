"""RunPod network volumes: our REST v2 client (``backends/runpod/volumes.py``) against the emulator's routes,
and the files an emulated pod sees at its volume's mount (put there through the volume's S3 API)."""

from __future__ import annotations

import pytest
import requests

from unsloth_nb.backends.runpod.api_types import PodSpec, RetryPolicy, RunPodRuleError
from unsloth_nb.backends.runpod.client import RunPodClient
from unsloth_nb.backends.runpod.volumes import VolumeNotFoundError, VolumesClient
from unsloth_nb.testing.pytest_runpod import FAKE_API_KEY
from unsloth_nb.testing.runpod_emulator import RunPodEmulator
from unsloth_nb.testing.s3_emulator import LoopbackS3

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


def volumes() -> VolumesClient:
    return VolumesClient(retry=FAST, sleep=lambda s: None)


def test_volumes_are_listed_created_read_grown_and_deleted(runpod_emulator: RunPodEmulator) -> None:
    client = volumes()
    assert client.list() == []
    made = client.create("datasets", 20, "eu-ro-1")
    assert (made.name, made.size_gb, made.data_center, made.type) == ("datasets", 20, "EU-RO-1", "STANDARD")
    assert [v.id for v in client.list()] == [made.id]
    assert client.get(made.id) == made
    assert client.update(made.id, size_gb=40).size_gb == 40
    with pytest.raises(RunPodRuleError, match="can only grow"):
        client.update(made.id, size_gb=10)
    with pytest.raises(RunPodRuleError, match="no network volumes in data centre"):
        client.create("x", 10, "EMU-NOWHERE-1")
    client.delete(made.id)
    with pytest.raises(VolumeNotFoundError, match="runpod volume list"):
        client.get(made.id)


def test_a_create_whose_answer_is_lost_makes_one_volume_not_two(runpod_emulator: RunPodEmulator) -> None:
    """A volume bills from its creation: the retry after a lost answer finds the one RunPod made, by name."""
    client = volumes()
    older = client.create("datasets", 10, "EU-RO-1")  # a volume of the same name from before is not taken for it
    runpod_emulator.faults.lost_creates = 1  # RunPod creates it, then the connection closes with no answer
    made = client.create("datasets", 20, "EU-RO-1")

    assert runpod_emulator.faults.lost_creates == 0  # the answer really was lost
    assert made.id != older.id and (made.name, made.size_gb, made.data_center) == ("datasets", 20, "EU-RO-1")
    assert sorted(runpod_emulator.volumes.volumes) == sorted([older.id, made.id])


def test_the_routes_need_the_account_key_and_speak_v2_field_names(runpod_emulator: RunPodEmulator) -> None:
    url = runpod_emulator.api_base_url + "/v2/network-volumes"
    answer = requests.post(url, json={"name": "v", "size": 10, "dataCenter": "EU-RO-1"}, timeout=10)
    assert answer.status_code == 401 and answer.headers["Content-Type"] == "application/problem+json"
    headers = {"Authorization": f"Bearer {FAKE_API_KEY}"}
    answer = requests.post(url, json={"name": "v", "size": 10, "dataCenterId": "EU-RO-1"}, headers=headers, timeout=10)
    assert answer.status_code == 422 and "dataCenter" in answer.json()["errors"][0]["message"]  # GraphQL's name


def test_a_pod_sees_the_volume_files_put_through_its_s3_api_and_is_pinned_to_its_data_centre(
    runpod_emulator: RunPodEmulator, loopback_s3: LoopbackS3
) -> None:
    runpod_emulator.volumes.attach_s3(loopback_s3.env)
    volume = volumes().create("data", 10, "EU-RO-1")
    loopback_s3.put(volume.id, "datasets/qa.jsonl", b'{"prompt": "q", "completion": "a"}\n')  # bucket = volume id
    pods = RunPodClient(retry=FAST, sleep=lambda s: None)
    spec = PodSpec(
        name="unsloth-nb-volume",
        image="img",
        gpu_type_id="NVIDIA GeForce RTX 4090",
        docker_args='cat "$UNSLOTH_NB_VOLUME_MOUNT/datasets/qa.jsonl"; echo "dc=$RUNPOD_DC_ID"; exec sleep 600',
        network_volume_id=volume.id,
        data_center_ids=("EU-CZ-1",),
    )
    with pytest.raises(RunPodRuleError, match=f"{volume.id} is in EU-RO-1"):
        pods.create_pod(spec)
    spec = PodSpec(**{**spec.__dict__, "data_center_ids": ("EU-RO-1",)})
    pod = pods.create_pod(spec)
    try:
        runpod_emulator.wait_for(lambda: "dc=" in runpod_emulator.log(pod.id), timeout=20)
        text = runpod_emulator.log(pod.id)
        assert '"completion": "a"' in text and "dc=EU-RO-1" in text
        with pytest.raises(RunPodRuleError, match="attached to a pod"):
            volumes().delete(volume.id)
    finally:
        pods.terminate_pod(pod.id)


def test_a_job_on_a_volume_considers_only_the_gpus_its_data_centre_has(runpod_emulator: RunPodEmulator) -> None:
    """A pod pinned to the volume's data centre can only get a card that data centre has: the plan ranks only those."""
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.errors import PlanError
    from unsloth_nb.planning.plan_text import format_plan
    from unsloth_nb.planning.planner import LocalHardware, plan

    cpu = LocalHardware("cpu", "Test CPU", 16.0, 12.0, ram_gb=16.0, cpu_count=2)
    volume = volumes().create("checkpoints", 10, "EU-RO-1")
    here = {"NVIDIA RTX A6000", "NVIDIA A40", "NVIDIA H100 80GB HBM3"}  # cards the emulator knows
    runpod_emulator.volumes.data_centre_gpus["EU-RO-1"] = here

    def config(**runpod: object) -> TrainConfig:
        sections = {"volume_id": volume.id, **runpod}
        return TrainConfig.from_dict({"model": "unsloth/Llama-3.1-8B-Instruct", "dataset": "x.jsonl", "runpod": sections})

    made = plan(config(), None, cpu)
    assert made.placement == "runpod" and {g.gpu_type_id for g in made.gpu_candidates} <= here
    assert len(made.gpu_candidates) == 3  # each of them holds the 8B model in 4 bit
    assert "only the 3 card type(s) data centre EU-RO-1 has" in format_plan(made)
    # Without a volume the whole catalogue is ranked (the cheapest card is not one EU-RO-1 has).
    unpinned = plan(TrainConfig.from_dict({"model": "unsloth/Llama-3.1-8B-Instruct", "dataset": "x.jsonl"}), None, cpu)
    assert not {g.gpu_type_id for g in unpinned.gpu_candidates} <= here

    named = plan(config(gpus=["NVIDIA GeForce RTX 4090", "NVIDIA A40"]), None, cpu)
    assert [g.gpu_type_id for g in named.gpu_candidates] == ["NVIDIA A40"]
    assert any("NVIDIA GeForce RTX 4090 is not in data centre EU-RO-1" in w for w in named.warnings)
    with pytest.raises(PlanError, match="none of these cards is in data centre EU-RO-1"):
        plan(config(gpus=["NVIDIA GeForce RTX 4090"]), None, cpu)

    # RunPod itself refuses a card the data centre lacks, as out of stock (the next offer is then tried).
    pods = RunPodClient(retry=FAST, sleep=lambda s: None)
    spec = PodSpec(name="unsloth-nb-dc", image="img", gpu_type_id="NVIDIA GeForce RTX 4090", docker_args="exec sleep 600")
    spec = PodSpec(**{**spec.__dict__, "network_volume_id": volume.id, "data_center_ids": ("EU-RO-1",)})
    from unsloth_nb.backends.runpod.client import OutOfStockError

    with pytest.raises(OutOfStockError):
        pods.create_pod(spec)
