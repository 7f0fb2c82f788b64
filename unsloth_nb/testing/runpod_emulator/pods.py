"""Pod records: the emulator's state for one pod, and the two ways it is shown.

A :class:`Pod` is the mutable record the emulator keeps under its lock. It is
shown to the SDK as RunPod's GraphQL ``Pod`` object (:func:`pod_as_graphql`) and
to tests as a frozen :class:`PodInfo` snapshot, so a test can never change a pod
behind the emulator's back.
"""

from __future__ import annotations

import secrets
import string
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ID_ALPHABET = string.ascii_lowercase + string.digits
EMULATOR_DATA_CENTER = "EMU-LOCAL-1"


@dataclass(frozen=True)
class PortSpec:
    """One entry of a pod's ``ports`` string, such as ``8888/http``."""

    container_port: int
    protocol: str  # "http" or "tcp"


def parse_ports(spec: str | None) -> list[PortSpec]:
    """Parse RunPod's ``"8888/http,22/tcp"``; a malformed entry raises ValueError with the entry."""
    result: list[PortSpec] = []
    for raw in (spec or "").split(","):
        entry = raw.strip()
        if not entry:
            continue
        number, _, protocol = entry.partition("/")
        protocol = protocol.lower() or "http"
        if not number.isdigit() or protocol not in ("http", "tcp") or not 0 < int(number) < 65536:
            raise ValueError(f"invalid port specification {entry!r}: expected <port>/http or <port>/tcp")
        result.append(PortSpec(int(number), protocol))
    return result


def new_pod_id() -> str:
    """14 lowercase alphanumerics, like RunPod's."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(14))


def new_machine_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


def new_pod_api_key() -> str:
    """A key valid only for its own pod (RunPod injects such a key as RUNPOD_API_KEY)."""
    return "rpa_pod_" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(40))


def status_stamp(prefix: str) -> str:
    """RunPod's free-text ``lastStatusChange``, e.g. ``Rented by User: Thu Aug 20 2026 03:29:12 GMT+0000 (...)``."""
    stamp = time.strftime("%a %b %d %Y %H:%M:%S", time.gmtime())
    return f"{prefix}: {stamp} GMT+0000 (Coordinated Universal Time)"


@dataclass(eq=False)
class Pod:
    """The emulator's record of one pod. Only the emulator mutates it, under its lock."""

    id: str
    name: str
    image_name: str
    docker_args: str
    env: dict[str, str]
    ports_spec: str | None
    ports: list[PortSpec]
    gpu_type_id: str | None
    gpu_display_name: str | None
    gpu_count: int
    cloud_type: str
    pod_type: str  # "RESERVED" (on demand) or "INTERRUPTABLE" (spot)
    cost_per_hr: float
    vcpu_count: int
    memory_gb: int
    container_disk_gb: int
    volume_gb: int
    volume_mount_path: str
    api_key: str
    home: Path
    log_path: Path
    machine_id: str = field(default_factory=new_machine_id)
    pod_host_id: str = ""
    desired_status: str = "RUNNING"
    last_status_change: str = field(default_factory=lambda: status_stamp("Rented by User"))
    never_ready: bool = False
    holds_gpus: bool = False
    #: Bumped by every stop, resume, terminate and eviction, so a stale container thread knows to quit.
    generation: int = 0
    process: subprocess.Popen[bytes] | None = None
    started_at: float | None = None  # monotonic time the current container started
    local_ports: dict[int, int] = field(default_factory=dict)  # container port -> loopback port, per container start
    starts: int = 0
    restarts: int = 0
    exit_codes: list[int] = field(default_factory=list)
    gave_up: bool = False  # the crash loop hit the restart bound
    #: What the create asked of the host: the lowest CUDA version, or exactly these versions.
    min_cuda_version: str | None = None
    allowed_cuda_versions: tuple[str, ...] = ()
    network_volume_id: str | None = None
    data_center_ids: tuple[str, ...] = ()
    created_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def __post_init__(self) -> None:
        if not self.pod_host_id:
            self.pod_host_id = f"{self.id}-{secrets.token_hex(4)}"

    @property
    def container_up(self) -> bool:
        return self.process is not None and self.started_at is not None

    def info(self) -> PodInfo:
        return PodInfo(
            id=self.id,
            name=self.name,
            desired_status=self.desired_status,
            gpu_type_id=self.gpu_type_id,
            gpu_count=self.gpu_count,
            cloud_type=self.cloud_type,
            pod_type=self.pod_type,
            cost_per_hr=self.cost_per_hr,
            image_name=self.image_name,
            docker_args=self.docker_args,
            env=dict(self.env),
            ports=tuple(self.ports),
            local_ports=dict(self.local_ports),
            container_up=self.container_up,
            pid=self.process.pid if self.process is not None else None,
            starts=self.starts,
            restarts=self.restarts,
            exit_codes=tuple(self.exit_codes),
            gave_up=self.gave_up,
            never_ready=self.never_ready,
            api_key=self.api_key,
            home=self.home,
            log_path=self.log_path,
            min_cuda_version=self.min_cuda_version,
            allowed_cuda_versions=self.allowed_cuda_versions,
            network_volume_id=self.network_volume_id,
            data_center_ids=self.data_center_ids,
            vcpu_count=self.vcpu_count,
            memory_gb=self.memory_gb,
        )


@dataclass(frozen=True)
class PodInfo:
    """What a test may inspect about a pod, copied at one instant."""

    id: str
    name: str
    desired_status: str
    gpu_type_id: str | None
    gpu_count: int
    cloud_type: str
    pod_type: str
    cost_per_hr: float
    image_name: str
    docker_args: str
    env: dict[str, str]  # the env the pod was created with (what get_pod shows), not the injected RUNPOD_* ones
    ports: tuple[PortSpec, ...]
    local_ports: dict[int, int]  # container port -> loopback port of the current container
    container_up: bool
    pid: int | None
    starts: int  # containers started so far, restarts included
    restarts: int  # restarts after the start command exited on its own
    exit_codes: tuple[int, ...]  # exit statuses of start commands that ended on their own
    gave_up: bool  # the crash loop hit the emulator's restart bound: runtime stays null
    never_ready: bool
    api_key: str  # the pod-scoped key handed to the container as RUNPOD_API_KEY
    home: Path  # the container's working directory and HOME
    log_path: Path  # stdout and stderr of every container start, appended
    min_cuda_version: str | None = None
    allowed_cuda_versions: tuple[str, ...] = ()
    network_volume_id: str | None = None
    data_center_ids: tuple[str, ...] = ()
    vcpu_count: int = 0  # what the pod got: at least the create's floor
    memory_gb: int = 0


def pod_as_graphql(pod: Pod, now: float) -> dict[str, Any]:
    """RunPod's GraphQL ``Pod`` object for ``pod`` at monotonic time ``now``.

    ``uptimeSeconds`` stays 0 as on the real API (the live figure is
    ``runtime.uptimeInSeconds``); ``runtime`` is null until the container runs.
    """
    runtime: dict[str, Any] | None = None
    if pod.container_up and pod.started_at is not None:
        runtime = {
            "uptimeInSeconds": int(now - pod.started_at),
            "ports": [
                {
                    "ip": "127.0.0.1",
                    "isIpPublic": port.protocol == "tcp",
                    "privatePort": port.container_port,
                    "publicPort": pod.local_ports.get(port.container_port),
                    "type": port.protocol,
                }
                for port in pod.ports
            ],
            "gpus": [{"id": f"GPU-{pod.id[:8]}-{i}", "gpuUtilPercent": 0, "memoryUtilPercent": 0} for i in range(pod.gpu_count)],
            "container": {"cpuPercent": 0, "memoryPercent": 0},
        }
    return {
        "id": pod.id,
        "name": pod.name,
        "imageName": pod.image_name,
        "env": [f"{key}={value}" for key, value in pod.env.items()],
        "machineId": pod.machine_id,
        "machine": {
            "podHostId": pod.pod_host_id,
            "gpuDisplayName": pod.gpu_display_name,
            "location": "Loopback",
            "dataCenterId": EMULATOR_DATA_CENTER,
        },
        "desiredStatus": pod.desired_status,
        "lastStatusChange": pod.last_status_change,
        "containerDiskInGb": pod.container_disk_gb,
        "costPerHr": pod.cost_per_hr,
        "dockerArgs": pod.docker_args or None,
        "dockerId": None,
        "gpuCount": pod.gpu_count,
        "memoryInGb": pod.memory_gb,
        "podType": pod.pod_type,
        "port": None,
        "ports": pod.ports_spec,
        "uptimeSeconds": 0,
        "vcpuCount": pod.vcpu_count,
        "volumeInGb": pod.volume_gb,
        "volumeMountPath": pod.volume_mount_path,
        "runtime": runtime,
    }


#: The CUDA version the emulator's hosts report (a host is "new enough" for any request up to it).
EMULATOR_CUDA_VERSION = "12.8"


def rest_status(pod: Pod) -> str:
    """REST v2's ``status``: RUNNING only once the container runs; STARTING while the image "pulls"."""
    if pod.desired_status == "RUNNING":
        return "RUNNING" if pod.container_up else "STARTING"
    return pod.desired_status if pod.desired_status in ("EXITED", "TERMINATED") else "EXITED"


def pod_as_rest(pod: Pod, now: float) -> dict[str, Any]:
    """RunPod's REST v2 ``Pod`` object for ``pod`` at monotonic time ``now`` (see the RunPod reference, §5.6)."""
    status = rest_status(pod)
    runtime: dict[str, Any] | None = None
    if status == "RUNNING" and pod.started_at is not None:
        runtime = {
            "uptime": int(now - pod.started_at),
            "gpus": [{"id": f"GPU-{pod.id[:8]}-{i}", "utilization": 0, "memoryUtilization": 0} for i in range(pod.gpu_count)],
            "cpu": {"utilization": 0},
            "memory": {"utilization": 0},
            "ports": [
                {
                    "private": port.container_port,
                    "public": pod.local_ports.get(port.container_port),
                    "type": port.protocol,
                    "ip": "127.0.0.1",
                }
                for port in pod.ports
            ],
        }
    actions = {"RUNNING": ["stop", "restart", "terminate"], "STARTING": ["stop", "terminate"]}.get(status, ["start", "terminate"])
    mounts: dict[str, Any] = {}
    if pod.network_volume_id:
        mounts["network"] = [{"volumeId": pod.network_volume_id, "path": pod.volume_mount_path}]
    elif pod.volume_gb:
        mounts["persistent"] = {"size": pod.volume_gb, "path": pod.volume_mount_path}
    body: dict[str, Any] = {
        "id": pod.id,
        "name": pod.name,
        "status": status,
        "actions": actions,
        "image": pod.image_name,
        "args": pod.docker_args,
        "disk": pod.container_disk_gb,
        "mounts": mounts,
        "ports": [f"{p.container_port}/{p.protocol}" for p in pod.ports],
        "env": dict(pod.env),
        "registry": None,
        "cloud": pod.cloud_type if pod.cloud_type in ("SECURE", "COMMUNITY") else "SECURE",
        "dataCenterId": EMULATOR_DATA_CENTER,
        "cudaVersion": EMULATOR_CUDA_VERSION,
        "ssh": {"proxy": None, "direct": None},
        "template": None,
        "cost": pod.cost_per_hr if pod.desired_status == "RUNNING" else 0.0,
        "locked": False,
        "runtime": runtime,
        "createdAt": pod.created_at,
        "startedAt": pod.created_at if runtime is not None else None,
        "globalNetworking": False,
    }
    if pod.gpu_type_id is not None:
        body["gpu"] = {"id": pod.gpu_type_id, "count": pod.gpu_count}
    else:
        body["cpu"] = {"vcpuCount": pod.vcpu_count, "memory": pod.memory_gb}
    return body
