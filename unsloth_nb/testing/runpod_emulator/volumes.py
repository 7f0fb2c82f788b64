"""Network volumes on the emulator: REST v2 ``/v2/network-volumes`` and the files a pod sees at its mount.

Shapes follow the RunPod reference (§2.10, §7.5): REST v2 renamed GraphQL's
``dataCenterId`` to ``dataCenter`` and added ``type`` (``STANDARD`` or
``HIGH_PERFORMANCE``).

- ``GET /v2/network-volumes`` -> ``[Volume]``; ``POST`` ``{name, size, dataCenter, type?}`` -> 201 Volume;
- ``GET /v2/network-volumes/{id}`` -> Volume or 404; ``PATCH`` ``{name?, size?}`` -> Volume
  (a size can only grow: a smaller one is a 400); ``DELETE`` -> 204 (409 while a live pod mounts it);
- ``GET /v2/catalog/datacenters/{id}?include=GPU_AVAILABILITY`` -> the data centre with ``gpuAvailability``
  ``[{gpuId, displayName, stockStatus}]`` (RunPod's "Get a data center"; the item fields as ``runpodctl
  datacenter list`` prints them, not a v2 response seen). Every card is in every data centre unless a test
  narrows one (:attr:`Volumes.data_centre_gpus`); a pod created there on another card is out of stock.

A volume's files live in one folder of the emulator's work directory. A pod created
with ``networkVolumeId`` gets ``UNSLOTH_NB_VOLUME_MOUNT`` pointing at that folder (the
emulator's stand-in for ``/workspace``: a process here cannot mount anything there),
and RunPod's ``RUNPOD_DC_ID`` is the volume's data centre. RunPod's S3-compatible API
for the volume is the loopback S3 server (bucket = volume id) when the test gives one
(:meth:`Volumes.attach_s3`): creating a volume creates its bucket, and each container
start copies the bucket's objects into the folder, so a file uploaded through the S3
API is on the pod's mount, as on RunPod. Writes a pod makes on the mount do not flow
back to the bucket (nothing here reads them through S3).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.testing.runpod_emulator.problem import OUT_OF_STOCK, Problem, parse_body

if TYPE_CHECKING:
    from unsloth_nb.testing.runpod_emulator.http_api import ApiHandler
    from unsloth_nb.testing.runpod_emulator.pods import Pod

#: Data centres with an S3 API (RunPod reference §2.10), which the emulator accepts for volumes.
DATA_CENTERS = (
    "EU-CZ-1",
    "EU-RO-1",
    "EUR-IS-1",
    "EUR-NO-1",
    "US-CA-2",
    "US-GA-2",
    "US-IL-1",
    "US-KS-2",
    "US-MD-1",
    "US-MO-1",
    "US-MO-2",
    "US-NC-1",
    "US-NC-2",
    "US-NE-1",
    "US-WA-1",
)
TYPES = ("STANDARD", "HIGH_PERFORMANCE")
_PATH = "network-volumes"


@dataclass
class NetworkVolume:
    id: str
    name: str
    size: int
    data_center: str
    type: str = "STANDARD"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "size": self.size, "dataCenter": self.data_center, "type": self.type}


class Volumes:
    """The account's network volumes and their folders; thread-safe."""

    def __init__(self, workdir: Path) -> None:
        self.root = workdir / "volumes"
        self.volumes: dict[str, NetworkVolume] = {}
        #: data centre -> the gpuTypeIds it has; a data centre not named here has every card.
        self.data_centre_gpus: dict[str, set[str]] = {}
        self._s3: dict[str, str] | None = None
        self._lock = threading.Lock()

    # ---- the S3 side ------------------------------------------------------------------
    def attach_s3(self, env: dict[str, str]) -> None:
        """Serve every volume's S3 API from this S3 server (``AWS_ENDPOINT_URL`` and a key pair, as LoopbackS3.env)."""
        self._s3 = dict(env)
        for volume in list(self.volumes.values()):
            self._ensure_bucket(volume.id)

    def _client(self) -> Any:
        import boto3

        env = self._s3 or {}
        return boto3.session.Session().client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
            region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
        )

    def _ensure_bucket(self, volume_id: str) -> None:
        if self._s3 is None:
            return
        client = self._client()
        if volume_id not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket=volume_id)

    def folder(self, volume_id: str) -> Path:
        """The volume's files; a file put through the S3 API is copied in first."""
        folder = self.root / volume_id
        folder.mkdir(parents=True, exist_ok=True)
        if self._s3 is not None and volume_id in self.volumes:
            client = self._client()
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=volume_id):
                for item in page.get("Contents", []):
                    target = folder / item["Key"]
                    if target.is_file() and target.stat().st_size == item["Size"]:
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    client.download_file(volume_id, item["Key"], str(target))
        return folder

    # ---- pods -------------------------------------------------------------------------
    def container_env(self, pod: Pod) -> dict[str, str]:
        """What a container of ``pod`` is told about its network volume (nothing without one)."""
        if not pod.network_volume_id:
            return {}
        env = {"UNSLOTH_NB_VOLUME_MOUNT": str(self.folder(pod.network_volume_id))}
        volume = self.volumes.get(pod.network_volume_id)
        if volume is not None:
            env["RUNPOD_DC_ID"] = volume.data_center
        return env

    def check_placement(self, volume_id: str | None, data_center_ids: tuple[str, ...], gpu_type_id: str = "") -> None:
        """A pod with a volume must be allowed in the volume's data centre (RunPod pins it there), on a card it has."""
        volume = self.volumes.get(volume_id or "")
        if volume is not None and data_center_ids and volume.data_center not in data_center_ids:
            raise Problem(
                400,
                f"network volume {volume.id} is in {volume.data_center}, not in dataCenterIds {list(data_center_ids)}",
                [{"field": "dataCenterIds", "message": f"include {volume.data_center}"}],
            )
        allowed = [self.data_centre_gpus[dc] for dc in data_center_ids if dc in self.data_centre_gpus]
        if gpu_type_id and allowed and not any(gpu_type_id in gpus for gpus in allowed):
            raise Problem(400, OUT_OF_STOCK)

    def data_centre(self, centre: str, gpu_ids: list[str], with_gpus: bool) -> dict[str, Any]:
        if centre not in DATA_CENTERS:
            raise Problem(404, f"data center {centre} not found")
        answer: dict[str, Any] = {
            "id": centre,
            "name": centre,
            "region": "EUROPE" if centre.startswith("EU") else "NORTH_AMERICA",
            "globalNetwork": False,
            "networkVolumeTypes": list(TYPES),
            "compliance": [],
        }
        if with_gpus:
            have = self.data_centre_gpus.get(centre)
            answer["gpuAvailability"] = [
                {"gpuId": gpu, "displayName": gpu.removeprefix("NVIDIA "), "stockStatus": "High"}
                for gpu in gpu_ids
                if have is None or gpu in have
            ]
        return answer

    # ---- the API's operations ---------------------------------------------------------
    def create(self, body: dict[str, Any]) -> NetworkVolume:
        if "dataCenterId" in body:
            raise Problem(422, "dataCenterId is not a v2 field", [{"field": "dataCenterId", "message": "use dataCenter"}])
        errors = [{"field": f, "message": "required"} for f in ("name", "size", "dataCenter") if not body.get(f)]
        if errors:
            raise Problem(422, "the network volume is missing required fields", errors)
        size, data_center, kind = body["size"], str(body["dataCenter"]).upper(), str(body.get("type") or "STANDARD")
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 4000:
            raise Problem(400, "size is a whole number of GB from 1 to 4000", [{"field": "size", "message": "1-4000"}])
        if data_center not in DATA_CENTERS:
            raise Problem(
                400, f"no network volumes in data centre {data_center}", [{"field": "dataCenter", "message": "unknown"}]
            )
        if kind not in TYPES:
            raise Problem(422, "type is STANDARD or HIGH_PERFORMANCE", [{"field": "type", "message": "invalid enum value"}])
        with self._lock:
            volume = NetworkVolume(secrets.token_hex(5), str(body["name"]), size, data_center, kind)
            self.volumes[volume.id] = volume
        self._ensure_bucket(volume.id)
        (self.root / volume.id).mkdir(parents=True, exist_ok=True)
        return volume

    def get(self, volume_id: str) -> NetworkVolume:
        volume = self.volumes.get(volume_id)
        if volume is None:
            raise Problem(404, f"network volume {volume_id} not found")
        return volume

    def update(self, volume_id: str, body: dict[str, Any]) -> NetworkVolume:
        volume = self.get(volume_id)
        if "size" in body:
            size = body["size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < volume.size:
                raise Problem(
                    400, f"a network volume can only grow (now {volume.size} GB)", [{"field": "size", "message": "grow"}]
                )
            volume.size = size
        if body.get("name"):
            volume.name = str(body["name"])
        return volume


def answer(handler: ApiHandler, method: str, path: str, raw: bytes) -> bool:
    """Answer a ``/v2/network-volumes`` request; False for any other path."""
    parts = [p for p in path.split("/")[2:] if p]
    if parts[:2] == ["catalog", "datacenters"] and len(parts) == 3 and method == "GET":
        return _data_centre(handler, parts[2])
    if not parts or parts[0] != _PATH:
        return False
    cloud = handler.server.cloud
    authorised, scoped = handler._authenticate("")
    try:
        if not authorised or scoped is not None:
            raise Problem(401 if not authorised else 403, "an account API key is needed for network volumes")
        body = parse_body(raw)
        status, result = _route(cloud, method, parts, body if isinstance(body, dict) else {})
    except Problem as problem:
        handler._send_problem(problem)
        return True
    if method == "POST" and cloud.faults.take_count("lost_creates"):
        handler._drop_connection()  # created, but the answer never comes: a retry must not make a second one
        return True
    handler.send_answer(status, result)
    return True


def _data_centre(handler: ApiHandler, centre: str) -> bool:
    from urllib.parse import parse_qs, unquote, urlsplit

    cloud = handler.server.cloud
    authorised, _ = handler._authenticate("")
    include = ",".join(parse_qs(urlsplit(handler.path).query).get("include", []))
    try:
        if not authorised:
            raise Problem(401, "missing or invalid API key")
        answer = cloud.volumes.data_centre(unquote(centre), sorted(cloud.gpus), "GPU_AVAILABILITY" in include)
    except Problem as problem:
        handler._send_problem(problem)
        return True
    handler.send_json(200, answer)
    return True


def _route(cloud: Any, method: str, parts: list[str], body: dict[str, Any]) -> tuple[int, Any]:
    volumes: Volumes = cloud.volumes
    if len(parts) == 1 and method == "GET":
        return 200, [v.to_json() for v in volumes.volumes.values()]
    if len(parts) == 1 and method == "POST":
        return 201, volumes.create(body).to_json()
    if len(parts) == 2:
        volume_id = parts[1]
        if method == "GET":
            return 200, volumes.get(volume_id).to_json()
        if method == "PATCH":
            return 200, volumes.update(volume_id, body).to_json()
        if method == "DELETE":
            volumes.get(volume_id)
            if cloud.volume_in_use(volume_id):
                raise Problem(409, f"network volume {volume_id} is attached to a pod; terminate the pod first")
            del volumes.volumes[volume_id]
            return 204, None
    raise Problem(405, f"{method} is not allowed on /v2/{'/'.join(parts)}")


__all__ = ["DATA_CENTERS", "NetworkVolume", "Volumes", "answer"]
