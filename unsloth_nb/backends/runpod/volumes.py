"""RunPod network volumes over REST v2 (``/v2/network-volumes``), with the pod API's retries and error messages.

Shapes (RunPod reference §2.10, §7.5): a volume is ``{id, name, size, dataCenter, type}``;
``GET`` lists them, ``POST {name, size, dataCenter, type}`` creates one (201),
``GET/PATCH/DELETE /v2/network-volumes/{id}`` read, grow or rename, and delete one (204).
Volumes exist only in REST v2 here: GraphQL's ``myself.networkVolumes`` is not used, so
these calls go over REST v2 whatever ``UNSLOTH_NB_RUNPOD_API`` says.

The S3-compatible API of a volume (``https://s3api-<dc>.runpod.io/``, bucket = volume id)
is reached through :class:`~unsloth_nb.data.sources.s3.VolumeSource`; :func:`s3_endpoint`
names it for a volume's data centre.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from unsloth_nb.errors import UnslothNbError

PATH = "/v2/network-volumes"


class VolumeNotFoundError(UnslothNbError):
    """The account has no network volume with this id."""


@dataclass(frozen=True)
class NetworkVolume:
    id: str
    name: str
    size_gb: int
    data_center: str
    type: str = "STANDARD"

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> NetworkVolume:
        return cls(
            id=str(raw.get("id") or ""),
            name=str(raw.get("name") or ""),
            size_gb=int(raw.get("size") or 0),
            data_center=str(raw.get("dataCenter") or raw.get("dataCenterId") or ""),
            type=str(raw.get("type") or "STANDARD"),
        )


def s3_endpoint(data_center: str) -> str:
    """The S3 API of volumes in ``data_center`` (``UNSLOTH_NB_RUNPOD_S3_ENDPOINT`` overrides it, as for datasets)."""
    return os.environ.get("UNSLOTH_NB_RUNPOD_S3_ENDPOINT", "").strip() or f"https://s3api-{data_center.lower()}.runpod.io/"


class VolumesClient:
    """List, create, read, grow and delete the account's network volumes."""

    def __init__(self, api_key: str | None = None, **client_options: Any) -> None:
        from unsloth_nb.backends.runpod.client import RunPodClient

        self._client = RunPodClient(api_key, api="rest", **client_options)

    def _request(self, what: str, method: str, path: str, body: Any = None, recover: Any = None) -> Any:
        return self._client._call(what, lambda api: api._request(method, path, body=body), recover=recover)  # type: ignore[attr-defined]

    def list(self) -> list[NetworkVolume]:
        answer = self._request("list network volumes", "GET", PATH) or []
        items = answer.get("networkVolumes", []) if isinstance(answer, dict) else answer
        return [NetworkVolume.from_api(raw) for raw in items if isinstance(raw, dict)]

    def get(self, volume_id: str) -> NetworkVolume:
        from unsloth_nb.backends.runpod.api_types import RunPodApiError

        try:
            raw = self._request(f"read network volume {volume_id}", "GET", f"{PATH}/{quote(volume_id, safe='')}")
        except RunPodApiError as exc:
            if "404" in str(exc) or "not found" in str(exc).lower():
                raise VolumeNotFoundError(
                    f"RunPod has no network volume {volume_id}; `unsloth-nb runpod volume list` shows the account's volumes"
                ) from None
            raise
        return NetworkVolume.from_api(raw or {})

    def create(self, name: str, size_gb: int, data_center: str, type: str = "STANDARD") -> NetworkVolume:
        """Create one volume, exactly one even when RunPod's answer is lost: a volume bills by the GB-month from its
        creation, so a retry first looks for the volume that create made (by name, among those not there before)."""
        body = {"name": name, "size": size_gb, "dataCenter": data_center.upper(), "type": type}
        before = {volume.id for volume in self.list() if volume.name == name}

        def made_meanwhile() -> dict[str, Any] | None:
            new = [v for v in self.list() if v.name == name and v.id not in before]
            if not new:
                return None
            volume = new[0]
            return {
                "id": volume.id,
                "name": volume.name,
                "size": volume.size_gb,
                "dataCenter": volume.data_center,
                "type": volume.type,
            }

        answer = self._request(f"create network volume {name}", "POST", PATH, body, recover=made_meanwhile)
        return NetworkVolume.from_api(answer or {})

    def update(self, volume_id: str, *, name: str | None = None, size_gb: int | None = None) -> NetworkVolume:
        body: dict[str, Any] = {}
        if name:
            body["name"] = name
        if size_gb is not None:
            body["size"] = size_gb
        path = f"{PATH}/{quote(volume_id, safe='')}"
        return NetworkVolume.from_api(self._request(f"update network volume {volume_id}", "PATCH", path, body) or {})

    def delete(self, volume_id: str) -> None:
        self._request(f"delete network volume {volume_id}", "DELETE", f"{PATH}/{quote(volume_id, safe='')}")


__all__ = ["NetworkVolume", "VolumeNotFoundError", "VolumesClient", "s3_endpoint"]
