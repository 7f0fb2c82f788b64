"""The emulated RunPod account: pods, GPU stock, billing, and each pod's container lifecycle.

Everything here is transport-free; the GraphQL layer calls these methods and the
proxy asks where a pod's port lives. The lifecycle follows the real service:

- create: the pod is RUNNING and billing at once, ``runtime`` is null while the
  "image pulls" (``start_delay``), then the start command runs as a local process;
- the start command exits: the container restarts (RunPod's crash loop, still
  billing), up to ``max_restarts`` times, after which ``runtime`` stays null;
- stop: the process is killed, billing stops, the GPUs go back to the pool, the pod
  is EXITED; resume needs free GPUs again and boots after ``start_delay``;
- terminate: the process is killed and the pod is gone (``pod`` answers null),
  also when the pod terminates itself with its pod-scoped key.

Each container runs in a thread that owns it; stop, terminate and eviction bump
the pod's ``generation`` so that thread sees it no longer owns the pod and quits
without restarting anything.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from unsloth_nb.testing.runpod_emulator import containers
from unsloth_nb.testing.runpod_emulator.catalogue import GpuType
from unsloth_nb.testing.runpod_emulator.faults import Faults
from unsloth_nb.testing.runpod_emulator.ledger import Ledger
from unsloth_nb.testing.runpod_emulator.pods import (
    Pod,
    PodInfo,
    new_pod_api_key,
    new_pod_id,
    parse_ports,
    pod_as_graphql,
    pod_as_rest,
    status_stamp,
)
from unsloth_nb.testing.runpod_emulator.problem import OUT_OF_STOCK
from unsloth_nb.testing.runpod_emulator.serverless import Serverless
from unsloth_nb.testing.runpod_emulator.volumes import Volumes

NO_GPUS_TO_RESUME = "There are not enough free GPUs on the host machine to start this pod."
NOT_FOUND_TO_TERMINATE = "pod not found to terminate"
NOT_FOUND = "pod not found"
INSUFFICIENT_BALANCE = "Insufficient balance: add credit to your account to rent this pod."

_CPU_INSTANCE = re.compile(r"^cpu\w*-(\d+)-(\d+)$")
_CPU_USD_PER_VCPU_HOUR = 0.03


class ApiError(Exception):
    """A failure the API reports inside a GraphQL answer (``errors[0].message``)."""

    def __init__(self, message: str, code: str = "INTERNAL_SERVER_ERROR") -> None:
        super().__init__(message)
        self.extensions = {"code": code}


class Cloud:
    """The state behind the emulated API. Thread-safe; every pod change happens under one lock."""

    def __init__(
        self,
        *,
        gpus: Iterable[GpuType],
        workdir: Path,
        start_delay: float,
        restart_delay: float,
        max_restarts: int,
        stop_grace_s: float,
        extra_env: Mapping[str, str],
    ) -> None:
        self.gpus: dict[str, GpuType] = {gpu.id: gpu for gpu in gpus}
        self.ledger = Ledger()
        self.faults = Faults()
        self.start_delay = start_delay
        self.restart_delay = restart_delay
        self.max_restarts = max_restarts
        self.stop_grace_s = stop_grace_s
        self.extra_env = dict(extra_env)
        self.api_base_url = ""  # set by the emulator once its API server is bound
        self.pub_key = ""
        self.workdir = workdir
        self._bin = workdir / "bin"
        containers.write_shims(self._bin)
        self.serverless = Serverless(workdir, self.extra_env, stop_grace_s)
        self.volumes = Volumes(workdir)
        self._pods: dict[str, Pod] = {}
        self._dying: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.RLock()
        self._closing = threading.Event()

    # ---- inspection -------------------------------------------------------------------

    def pod_info(self, pod_id: str) -> PodInfo | None:
        with self._lock:
            pod = self._pods.get(pod_id)
            return None if pod is None else pod.info()

    def pod_infos(self) -> dict[str, PodInfo]:
        with self._lock:
            return {pod_id: pod.info() for pod_id, pod in self._pods.items()}

    def graphql_pod(self, pod_id: str) -> dict[str, Any] | None:
        with self._lock:
            pod = self._pods.get(pod_id)
            return None if pod is None else pod_as_graphql(pod, time.monotonic())

    def rest_pod(self, pod_id: str) -> dict[str, Any] | None:
        with self._lock:
            pod = self._pods.get(pod_id)
            return None if pod is None else pod_as_rest(pod, time.monotonic())

    def rest_pods(self) -> list[dict[str, Any]]:
        with self._lock:
            now = time.monotonic()
            return [pod_as_rest(pod, now) for pod in self._pods.values()]

    def graphql_pods(self) -> list[dict[str, Any]]:
        with self._lock:
            now = time.monotonic()
            return [pod_as_graphql(pod, now) for pod in self._pods.values()]

    def pod_for_key(self, key: str) -> str | None:
        """The pod whose scoped key this is (terminated pods' keys stop working)."""
        with self._lock:
            return next((pod.id for pod in self._pods.values() if pod.api_key == key), None)

    def proxy_target(self, pod_id: str, container_port: int) -> tuple[int | None, int]:
        """Where the proxy sends ``{pod_id}-{port}``: (loopback port, 0) or (None, the HTTP status to answer)."""
        with self._lock:
            pod = self._pods.get(pod_id)
            if pod is None or not any(p.container_port == container_port and p.protocol == "http" for p in pod.ports):
                return None, 404
            local = pod.local_ports.get(container_port)
            if pod.desired_status != "RUNNING" or not pod.container_up or local is None:
                return None, 502
            return local, 0

    def volume_in_use(self, volume_id: str) -> bool:
        """Whether a pod that is not terminated mounts this network volume."""
        with self._lock:
            return any(pod.network_volume_id == volume_id for pod in self._pods.values())

    def spend_per_hour(self) -> float:
        with self._lock:
            return round(sum(pod.cost_per_hr for pod in self._pods.values() if pod.desired_status == "RUNNING"), 4)

    # ---- the API's operations -----------------------------------------------------------

    def create_pod(self, fields: Mapping[str, Any], *, gpu: bool, bid_per_gpu: float | None = None) -> dict[str, Any]:
        """podFindAndDeployOnDemand / podRentInterruptable (``gpu``) or deployCpuPod."""
        image = str(fields.get("imageName") or "")
        template = fields.get("templateId")
        if not image and not template:
            raise ApiError("Either imageName or templateId is required.", "BAD_USER_INPUT")
        try:
            ports = parse_ports(fields.get("ports"))
        except ValueError as exc:
            raise ApiError(str(exc), "BAD_USER_INPUT") from None
        env = {str(item["key"]): str(item["value"]) for item in fields.get("env") or []}
        cloud_type = str(fields.get("cloudType") or ("ALL" if gpu else "SECURE"))
        with self._lock:
            if self.faults.take_count("insufficient_balance"):
                raise ApiError(INSUFFICIENT_BALANCE, "INSUFFICIENT_BALANCE")
            if gpu:
                gpu_type, count, cost, vcpus, memory = self._gpu_offer(fields, cloud_type, bid_per_gpu)
            else:
                gpu_type, count = None, 0
                vcpus, memory = _cpu_shape(fields.get("instanceId"))
                cost = round(vcpus * _CPU_USD_PER_VCPU_HOUR, 4)
            pod_id = self._unused_pod_id()
            pod = Pod(
                id=pod_id,
                name=str(fields.get("name") or ""),
                image_name=image or str(template),
                docker_args=str(fields.get("dockerArgs") or ""),
                env=env,
                ports_spec=fields.get("ports") or None,
                ports=ports,
                gpu_type_id=gpu_type.id if gpu_type else None,
                gpu_display_name=gpu_type.display_name if gpu_type else None,
                gpu_count=count,
                cloud_type=cloud_type,
                pod_type="INTERRUPTABLE" if bid_per_gpu is not None else "RESERVED",
                cost_per_hr=cost,
                vcpu_count=vcpus,
                memory_gb=memory,
                container_disk_gb=int(fields.get("containerDiskInGb") or 10),
                volume_gb=int(fields.get("volumeInGb") or 0),
                volume_mount_path=str(fields.get("volumeMountPath") or "/runpod-volume"),
                api_key=new_pod_api_key(),
                home=self.workdir / "pods" / pod_id,
                log_path=self.workdir / "logs" / f"{pod_id}.log",
                min_cuda_version=str(fields["minCudaVersion"]) if fields.get("minCudaVersion") else None,
                allowed_cuda_versions=tuple(str(v) for v in fields.get("allowedCudaVersions") or ()),
                network_volume_id=str(fields["networkVolumeId"]) if fields.get("networkVolumeId") else None,
                data_center_ids=tuple(
                    str(v)
                    for v in fields.get("dataCenterIds") or ([fields["dataCenterId"]] if fields.get("dataCenterId") else [])
                ),
            )
            if gpu_type is not None:
                gpu_type.available -= count
                pod.holds_gpus = True
            pod.never_ready = self.faults.take_count("never_ready")
            self._pods[pod_id] = pod
            self.ledger.start(pod_id, pod.name, pod.gpu_type_id, pod.cost_per_hr)
            self._boot(pod, self.start_delay)
            return pod_as_graphql(pod, time.monotonic())

    def stop_pod(self, pod_id: str) -> dict[str, Any]:
        with self._lock:
            pod = self._pods.get(pod_id)
            if pod is None:
                raise ApiError(NOT_FOUND, "NOT_FOUND")
            if pod.desired_status == "RUNNING":
                self._halt(pod)
                pod.desired_status = "EXITED"
                pod.last_status_change = status_stamp("Exited by User")
            return pod_as_graphql(pod, time.monotonic())

    def resume_pod(self, pod_id: str, bid_per_gpu: float | None = None) -> dict[str, Any]:
        with self._lock:
            pod = self._pods.get(pod_id)
            if pod is None:
                raise ApiError(NOT_FOUND, "NOT_FOUND")
            if pod.desired_status != "RUNNING":
                gpu_type = self.gpus.get(pod.gpu_type_id or "")
                if gpu_type is not None:
                    if gpu_type.id in self.faults.out_of_stock or gpu_type.available < pod.gpu_count:
                        raise ApiError(NO_GPUS_TO_RESUME)
                    gpu_type.available -= pod.gpu_count
                    pod.holds_gpus = True
                if bid_per_gpu is not None:
                    pod.cost_per_hr = round(bid_per_gpu * pod.gpu_count, 4)
                pod.desired_status = "RUNNING"
                pod.last_status_change = status_stamp("Rented by User")
                pod.gave_up = False
                self.ledger.start(pod.id, pod.name, pod.gpu_type_id, pod.cost_per_hr)
                self._boot(pod, self.start_delay)
            return pod_as_graphql(pod, time.monotonic())

    def terminate_pod(self, pod_id: str) -> None:
        with self._lock:
            pod = self._pods.get(pod_id)
            if pod is None:
                raise ApiError(NOT_FOUND_TO_TERMINATE, "NOT_FOUND")
            if self.faults.take_count("silent_terminate_failures"):
                return
            self._halt(pod)
            pod.desired_status = "TERMINATED"
            del self._pods[pod_id]

    def evict(self, pod_id: str, *, remove: bool = False) -> None:
        """Kill a pod's container as the host would (spot eviction, host failure)."""
        with self._lock:
            pod = self._pods.get(pod_id)
            if pod is None:
                raise KeyError(pod_id)
            self._halt(pod)
            pod.desired_status = "EXITED"
            pod.last_status_change = status_stamp("Exited by Runpod")
            if remove:
                pod.desired_status = "TERMINATED"
                del self._pods[pod_id]

    def shutdown(self) -> None:
        """Kill every container and stop all billing; used when the emulator stops."""
        self._closing.set()
        self.serverless.shutdown()
        with self._lock:
            for pod in list(self._pods.values()):
                if pod.desired_status == "RUNNING":
                    self._halt(pod)
                    pod.desired_status = "EXITED"
            dying = list(self._dying)
        killers = [threading.Thread(target=containers.kill, args=(p, self.stop_grace_s), daemon=True) for p in dying]
        for thread in killers:
            thread.start()
        for thread in killers:
            thread.join()

    # ---- internals (call with the lock held) ---------------------------------------------

    def _gpu_offer(
        self, fields: Mapping[str, Any], cloud_type: str, bid_per_gpu: float | None
    ) -> tuple[GpuType, int, float, int, int]:
        gpu_type = self.gpus.get(str(fields.get("gpuTypeId") or ""))
        count = int(fields.get("gpuCount") or 1)
        if gpu_type is None or gpu_type.id in self.faults.out_of_stock:
            raise ApiError(OUT_OF_STOCK)
        price = gpu_type.on_demand_price(cloud_type)
        if price is None or count > gpu_type.max_gpu_count or gpu_type.available < count:
            raise ApiError(OUT_OF_STOCK)
        if bid_per_gpu is not None:
            price = bid_per_gpu
        vcpus = max(int(fields.get("minVcpuCount") or 1), gpu_type.vcpus_per_gpu * count)
        memory = max(int(fields.get("minMemoryInGb") or 1), gpu_type.ram_gb_per_gpu * count)
        return gpu_type, count, round(price * count, 4), vcpus, memory

    def _unused_pod_id(self) -> str:
        while True:
            pod_id = new_pod_id()
            if pod_id not in self._pods and pod_id not in self.ledger.pod_ids():
                return pod_id

    def _halt(self, pod: Pod) -> None:
        """Stop billing, free GPUs and kill the container (asynchronously, as the real API answers first)."""
        pod.generation += 1
        self.ledger.stop(pod.id)
        if pod.holds_gpus:
            gpu_type = self.gpus.get(pod.gpu_type_id or "")
            if gpu_type is not None:
                gpu_type.available += pod.gpu_count
            pod.holds_gpus = False
        process, pod.process, pod.started_at = pod.process, None, None
        pod.local_ports = {}
        if process is not None:
            self._dying.add(process)
            threading.Thread(target=self._reap, args=(process,), name=f"runpod-emulator-kill-{pod.id}", daemon=True).start()

    def _reap(self, process: subprocess.Popen[bytes]) -> None:
        containers.kill(process, self.stop_grace_s)
        with self._lock:
            self._dying.discard(process)

    def _boot(self, pod: Pod, delay: float) -> None:
        pod.generation += 1
        threading.Thread(
            target=self._container_loop, args=(pod, pod.generation, delay), name=f"runpod-emulator-{pod.id}", daemon=True
        ).start()

    def _owns(self, pod: Pod, generation: int) -> bool:
        return (
            not self._closing.is_set()
            and pod.generation == generation
            and self._pods.get(pod.id) is pod
            and pod.desired_status == "RUNNING"
        )

    def _container_loop(self, pod: Pod, generation: int, delay: float) -> None:
        """Start the container after ``delay``, then restart it each time it exits, up to the bound."""
        wait = delay
        while True:
            if self._closing.wait(wait):
                return
            with self._lock:
                if not self._owns(pod, generation) or pod.never_ready:
                    return
                process = self._start_container(pod, generation)
            code = process.wait()
            with self._lock:
                if not self._owns(pod, generation) or pod.process is not process:
                    return
                pod.process, pod.started_at, pod.local_ports = None, None, {}
                pod.exit_codes.append(code)
                gave_up = pod.restarts >= self.max_restarts
                _note(
                    pod,
                    f"start command exited with status {code}; "
                    + ("restart bound reached, not restarting" if gave_up else "restarting"),
                )
                if gave_up:
                    pod.gave_up = True
                    return
                pod.restarts += 1
            wait = self.restart_delay

    def _start_container(self, pod: Pod, generation: int) -> subprocess.Popen[bytes]:
        pod.local_ports = {port.container_port: containers.free_port() for port in pod.ports}
        env = containers.container_env(pod, self.api_base_url, self._bin, self.pub_key, self.extra_env)
        env.update(self.volumes.container_env(pod))
        process = containers.spawn(pod, env)
        pod.process, pod.started_at = process, time.monotonic()
        pod.starts += 1
        die_after = self.faults.die_after_s
        if die_after is not None:
            self._after(die_after, self._die, pod, generation, process, self.faults.die_as)
        return process

    def _die(self, pod: Pod, generation: int, process: subprocess.Popen[bytes], die_as: str) -> None:
        with self._lock:
            if pod.generation == generation and pod.process is process:
                _note(pod, f"killed by the die_after_s fault (pod {die_as})")
                self.evict(pod.id, remove=die_as == "terminated")

    def _after(self, delay: float, action: Callable[..., None], *args: Any) -> None:
        def run() -> None:
            if not self._closing.wait(delay):
                action(*args)

        threading.Thread(target=run, daemon=True).start()


def _cpu_shape(instance_id: object) -> tuple[int, int]:
    """vCPUs and GB of a CPU instance id such as ``cpu3c-2-4``."""
    match = _CPU_INSTANCE.match(str(instance_id or "cpu3c-2-4"))
    return (int(match.group(1)), int(match.group(2))) if match else (2, 4)


def _note(pod: Pod, message: str) -> None:
    """A line in the pod's log from the emulator itself, so a test failure shows what the host did."""
    with pod.log_path.open("a") as log:
        log.write(f"[emulator] {message}\n")
