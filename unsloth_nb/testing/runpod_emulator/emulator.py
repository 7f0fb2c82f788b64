"""``RunPodEmulator``: the emulated RunPod account, its API server and its pod proxy, on loopback.

Point the unmodified ``runpod`` SDK at it with ``RUNPOD_API_BASE_URL`` (the SDK
reads it on every call and appends ``/graphql``) and set ``runpod.api_key`` (the
SDK ignores ``RUNPOD_API_KEY``). Pod HTTP ports are reached by formatting
:attr:`RunPodEmulator.proxy_url_template` with ``pod_id`` and ``port``, where
RunPod's template is ``https://{pod_id}-{port}.proxy.runpod.net``.

    with RunPodEmulator(start_delay=0.5) as emulator:
        os.environ["RUNPOD_API_BASE_URL"] = emulator.api_base_url
        runpod.api_key = "anything"
        ...
        assert not emulator.ledger.running_pods()
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType

from unsloth_nb.testing.runpod_emulator.catalogue import GpuType, default_gpus
from unsloth_nb.testing.runpod_emulator.cloud import Cloud
from unsloth_nb.testing.runpod_emulator.faults import Faults
from unsloth_nb.testing.runpod_emulator.http_api import ApiCall, ApiServer
from unsloth_nb.testing.runpod_emulator.ledger import Ledger
from unsloth_nb.testing.runpod_emulator.pods import PodInfo
from unsloth_nb.testing.runpod_emulator.proxy import ProxyServer
from unsloth_nb.testing.runpod_emulator.serverless import Serverless
from unsloth_nb.testing.runpod_emulator.serverless_api import JobApiServer
from unsloth_nb.testing.runpod_emulator.volumes import Volumes


class RunPodEmulator:
    """A loopback RunPod: REST v2 and GraphQL APIs, pods as local processes, an HTTP proxy, a bill.

    ``port``/``proxy_port`` 0 pick free ports. ``start_delay`` is how long a new or
    resumed pod's ``runtime`` stays null (image pull); ``restart_delay`` and
    ``max_restarts`` shape the crash loop when a start command exits;
    ``stop_grace_s`` is the SIGTERM-to-SIGKILL grace of stop and terminate.
    ``api_key`` None accepts any key; otherwise only it (and pods' own scoped keys).
    ``extra_env`` is added to every container's environment, as an image's ENV would be.
    ``workdir`` holds pods' home folders and logs; a temporary one is made (and
    removed on stop) when not given.
    """

    def __init__(
        self,
        port: int = 0,
        start_delay: float = 1.0,
        gpus: Iterable[GpuType] | None = None,
        api_key: str | None = None,
        workdir: Path | None = None,
        *,
        proxy_port: int = 0,
        restart_delay: float = 0.5,
        max_restarts: int = 3,
        stop_grace_s: float = 3.0,
        proxy_timeout_s: float = 100.0,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="runpod-emulator-")) if workdir is None else Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._cloud = Cloud(
            gpus=default_gpus() if gpus is None else list(gpus),
            workdir=self.workdir,
            start_delay=start_delay,
            restart_delay=restart_delay,
            max_restarts=max_restarts,
            stop_grace_s=stop_grace_s,
            extra_env=extra_env or {},
        )
        self._closing = threading.Event()
        self._port = port
        self._proxy_port = proxy_port
        self._proxy_timeout_s = proxy_timeout_s
        self.api_key = api_key
        self._api: ApiServer | None = None
        self._proxy: ProxyServer | None = None
        self._jobs: JobApiServer | None = None
        self._threads: list[threading.Thread] = []

    # ---- lifecycle --------------------------------------------------------------------

    def start(self) -> RunPodEmulator:
        """Bind both servers on 127.0.0.1 and serve them from daemon threads."""
        if self._api is not None:
            return self
        self._api = ApiServer(self._port, self._cloud, self.api_key, self._closing)
        self._proxy = ProxyServer(self._proxy_port, self._cloud, self._proxy_timeout_s)
        self._jobs = JobApiServer(0, self._cloud.serverless, self.api_key, self._closing)
        self._cloud.api_base_url = self.api_base_url
        self._cloud.serverless.api_base_url = self.serverless_url.removesuffix("/v2")
        for name, server in (("api", self._api), ("proxy", self._proxy), ("jobs", self._jobs)):
            thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=f"runpod-emulator-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Kill every pod's processes (billing stops), then close both servers. Safe to call twice."""
        self._closing.set()
        self._cloud.shutdown()
        for server in (self._api, self._proxy, self._jobs):
            if server is not None:
                server.shutdown()
                server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._api = self._proxy = self._jobs = None
        self._threads = []
        atexit.unregister(self.stop)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RunPodEmulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # ---- addresses --------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._api is None:
            raise _not_started()
        return int(self._api.server_address[1])

    @property
    def proxy_port(self) -> int:
        if self._proxy is None:
            raise _not_started()
        return int(self._proxy.server_address[1])

    @property
    def api_base_url(self) -> str:
        """The value for ``RUNPOD_API_BASE_URL`` (REST v2 lives under ``/v2``, GraphQL at ``/graphql``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def serverless_url(self) -> str:
        """The serverless job API, standing in for ``https://api.runpod.ai/v2`` (``runpod.endpoint_url_base``)."""
        if self._jobs is None:
            raise _not_started()
        return f"http://127.0.0.1:{self._jobs.server_address[1]}/v2"

    @property
    def serverless(self) -> Serverless:
        """Templates, endpoints, requests and workers (fault knobs: ``.faults``; bill: ``.spans()``)."""
        return self._cloud.serverless

    @property
    def volumes(self) -> Volumes:
        """Network volumes (``attach_s3(LoopbackS3.env)`` serves their S3 API from a loopback S3 server)."""
        return self._cloud.volumes

    @property
    def graphql_url(self) -> str:
        return f"{self.api_base_url}/graphql"

    @property
    def admin_url(self) -> str:
        """Base of the loopback admin endpoint (``/state``, ``/faults``, ``/stock``, ``/pods/<id>/evict``)."""
        return f"{self.api_base_url}/_emulator"

    @property
    def proxy_url_template(self) -> str:
        """Format with ``pod_id`` and ``port``; stands in for ``https://{pod_id}-{port}.proxy.runpod.net``."""
        return f"http://127.0.0.1:{self.proxy_port}/{{pod_id}}-{{port}}"

    def proxy_url(self, pod_id: str, port: int) -> str:
        return self.proxy_url_template.format(pod_id=pod_id, port=port)

    # ---- state ------------------------------------------------------------------------

    @property
    def pod_env(self) -> dict[str, str]:
        """What every pod created from now on gets in its environment (``extra_env``); tests may change it."""
        return self._cloud.extra_env

    @property
    def ledger(self) -> Ledger:
        return self._cloud.ledger

    @property
    def faults(self) -> Faults:
        return self._cloud.faults

    @property
    def api_calls(self) -> list[ApiCall]:
        """Every API request (GraphQL and REST v2) received so far, in order (empty before start)."""
        return list(self._api.calls) if self._api is not None else []

    @property
    def gpus(self) -> dict[str, GpuType]:
        """The catalogue by gpuTypeId; set ``.available`` to change stock."""
        return self._cloud.gpus

    @property
    def pods(self) -> dict[str, PodInfo]:
        """Snapshot of every pod that exists now (terminated ones are gone, as on RunPod)."""
        return self._cloud.pod_infos()

    def pod(self, pod_id: str) -> PodInfo | None:
        return self._cloud.pod_info(pod_id)

    @property
    def start_delay(self) -> float:
        return self._cloud.start_delay

    @start_delay.setter
    def start_delay(self, seconds: float) -> None:
        self._cloud.start_delay = seconds

    def log(self, pod_id: str) -> str:
        """Everything the pod's containers printed so far, with the emulator's own notes."""
        path = self.workdir / "logs" / f"{pod_id}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def evict(self, pod_id: str, *, remove: bool = False) -> None:
        """Kill a pod's container as the host would: EXITED and no longer billing, or gone with ``remove``."""
        self._cloud.evict(pod_id, remove=remove)

    def wait_for(self, condition: Callable[[], object], timeout: float = 30.0, interval: float = 0.05) -> None:
        """Poll ``condition`` until it is truthy; TimeoutError (with the pods' state) after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s; pods: {self.pods}")
            time.sleep(interval)


def _not_started() -> RuntimeError:
    return RuntimeError("the emulator is not running: use it as a context manager or call start()")
