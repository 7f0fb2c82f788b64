"""GraphQL root resolvers: each top-level field the SDK sends, mapped onto the emulated account.

graphql-core's default resolver calls a root attribute that is callable with
``(info, **arguments)``, so each field is a method here. The caller's key decides
what it may do: the account key may do anything; a pod-scoped key (the one a
container gets as ``RUNPOD_API_KEY``) may only read, stop, resume or terminate its
own pod, and anything else raises :class:`Unauthorized`, which the HTTP layer
turns into the 401 RunPod answers to a key that may not act.
"""

from __future__ import annotations

from typing import Any

from unsloth_nb.testing.runpod_emulator.cloud import ApiError, Cloud

USER_ID = "user_emulator0000000000000"


class Unauthorized(Exception):
    """The key may not do this; answered as HTTP 401."""


class Root:
    """Root value for one request, bound to the caller's identity.

    Method and argument names are the GraphQL field and argument names
    (``podTerminate``, ``input``) because the default resolver looks them up so.
    """

    def __init__(self, cloud: Cloud, scoped_pod_id: str | None) -> None:
        self._cloud = cloud
        self._scoped_pod_id = scoped_pod_id  # None: the account's own key

    def _account_only(self) -> None:
        if self._scoped_pod_id is not None:
            raise Unauthorized("a pod-scoped key may only act on its own pod")

    def _allowed(self, pod_id: str) -> None:
        if self._scoped_pod_id is not None and self._scoped_pod_id != pod_id:
            raise Unauthorized("a pod-scoped key may only act on its own pod")

    # ---- queries ----------------------------------------------------------------------

    def myself(self, info: object) -> dict[str, Any]:
        self._account_only()
        return {
            "id": USER_ID,
            "pubKey": self._cloud.pub_key,
            "email": "emulator@localhost",
            "clientBalance": 100.0,
            "currentSpendPerHr": self._cloud.spend_per_hour(),
            "spendLimit": 80.0,
            "pods": self._cloud.graphql_pods(),
            "networkVolumes": [],
        }

    def pod(self, info: object, input: dict[str, Any]) -> dict[str, Any] | None:
        self._allowed(input["podId"])
        found = self._cloud.graphql_pod(input["podId"])
        if found is None and self._cloud.faults.lookup_gone_as in ("error", "404"):
            raise ApiError(f"pod {input['podId']} not found", "NOT_FOUND")
        return found

    def gpuTypes(self, info: object, input: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self._account_only()
        wanted = (input or {}).get("id")
        return [gpu.as_graphql() for gpu in self._cloud.gpus.values() if wanted is None or gpu.id == wanted]

    # ---- mutations --------------------------------------------------------------------

    def podFindAndDeployOnDemand(self, info: object, input: dict[str, Any] | None = None) -> dict[str, Any]:
        self._account_only()
        return self._cloud.create_pod(input or {}, gpu=True)

    def podRentInterruptable(self, info: object, input: dict[str, Any]) -> dict[str, Any]:
        self._account_only()
        return self._cloud.create_pod(input, gpu=True, bid_per_gpu=float(input["bidPerGpu"]))

    def deployCpuPod(self, info: object, input: dict[str, Any] | None = None) -> dict[str, Any]:
        self._account_only()
        return self._cloud.create_pod(input or {}, gpu=False)

    def podStop(self, info: object, input: dict[str, Any]) -> dict[str, Any]:
        self._allowed(input["podId"])
        return self._cloud.stop_pod(input["podId"])

    def podResume(self, info: object, input: dict[str, Any]) -> dict[str, Any]:
        self._allowed(input["podId"])
        return self._cloud.resume_pod(input["podId"])

    def podBidResume(self, info: object, input: dict[str, Any]) -> dict[str, Any]:
        self._allowed(input["podId"])
        return self._cloud.resume_pod(input["podId"], bid_per_gpu=float(input["bidPerGpu"]))

    def podTerminate(self, info: object, input: dict[str, Any]) -> None:
        self._allowed(input["podId"])
        self._cloud.terminate_pod(input["podId"])

    def updateUserSettings(self, info: object, input: dict[str, Any] | None = None) -> dict[str, Any]:
        self._account_only()
        if input and input.get("pubKey") is not None:
            self._cloud.pub_key = str(input["pubKey"])
        return {"id": USER_ID, "pubKey": self._cloud.pub_key}
