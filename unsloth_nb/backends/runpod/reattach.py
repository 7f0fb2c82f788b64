"""What the job folder keeps so that another process can take over a RunPod job.

A job's owner can die (a kernel restart) while its pod trains on; ``load_job`` in a
new process then reattaches. The owner keeps, in the job folder:

- ``pod.json``: the current pod and this job's earlier ones (lost, or not ready in
  time) with what each cost, so runtime and cost count across the takeover.
  :func:`pod_record` is what the owner writes; :func:`read_pod_record`,
  :func:`earlier_pods` and :func:`rented_from` rebuild the ``RentedPod`` records
  from it;
- ``dataset_sent.json`` (the sha256, bytes and rows of the packed dataset the first
  pod got) next to ``inputs.json`` (the folder relative dataset paths were read
  from), so that :func:`reload_inputs` can read the dataset again, check it is the
  one that was sent, and plan the GPUs, when the job has to move to a new pod.

The worker's token is not among them: the new owner reads it from the pod's own
environment, as RunPod lists it to the account's key. Where the event stream
continues is the relay's part (:meth:`.relay.EventRelay.take_over`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from unsloth_nb.backends.runpod.api_types import Pod
from unsloth_nb.backends.runpod.pods import Offer, RentedPod, pod_name
from unsloth_nb.planning.gpu_catalog import GPU_CATALOG, GpuOption
from unsloth_nb.worker.protocol import pack_dataset

if TYPE_CHECKING:
    from unsloth_nb.backends.base import JobContext
    from unsloth_nb.backends.runpod.billing import Meter
    from unsloth_nb.jobrun.store import JobFolder

#: The job's current pod and its earlier ones, as the job folder keeps them.
POD_JSON = "pod.json"
#: Job-folder files that let a reattaching process send the same dataset to a new pod.
SENT_DATASET = "dataset_sent.json"  # sha256, bytes and rows of the packed dataset the first pod got
INPUTS_FILE = "inputs.json"  # the folder relative dataset paths were read from (written by the controller)


def pod_record(
    rented: RentedPod, meter: Meter, image: str, *, terminated: bool = False, note: str | None = None
) -> dict[str, Any]:
    """What ``pod.json`` says about the job's current pod ``rented`` and the pods before it."""
    data: dict[str, Any] = {
        "pod_id": rented.id,
        "name": rented.pod.name,
        "gpu_type_id": rented.offer.gpu.gpu_type_id,
        "gpu": rented.offer.gpu.display_name,
        "cloud_type": rented.offer.cloud_type,
        "usd_per_hour": rented.usd_per_hour,
        "image": image,
        "created": rented.created_at,
        "reused": rented.reused,
        "worker_url": rented.url,
        "terminated": time.time() if terminated or meter.is_gone(rented.id) else None,
        # Earlier pods of this job (lost, or not ready in time): what they cost counts against max_cost_usd.
        "previous": [
            {"pod_id": r.id, "usd_per_hour": r.usd_per_hour, "created": r.created_at, "seconds": round(meter.billed(r), 3)}
            for r in meter.rented
            if r.id != rented.id
        ],
    }
    if note:
        data["note"] = note
    return data


def read_pod_record(folder: JobFolder) -> dict[str, Any]:
    """The job's ``pod.json``, or nothing when the owner died before writing it (or it cannot be read)."""
    try:
        record: dict[str, Any] = folder.read_json(POD_JSON)
    except (OSError, ValueError):
        record = {}
    return record


def earlier_pods(job_id: str, record: dict[str, Any]) -> Iterator[tuple[RentedPod, float]]:
    """The earlier pods ``pod.json`` lists, each with the monotonic time its billing ended."""
    for earlier in record.get("previous") or []:
        ghost = rented_from(job_id, str(earlier["pod_id"]), earlier, None)
        yield ghost, ghost.created_monotonic + float(earlier.get("seconds") or 0.0)


def rented_from(job_id: str, pod_id: str, record: dict[str, Any], pod: Pod | None) -> RentedPod:
    """A RentedPod for a pod this process did not create, from what pod.json kept."""
    gpu_id = str(record.get("gpu_type_id") or "")
    option = next((g for g in GPU_CATALOG if g.gpu_type_id == gpu_id), None)
    if option is None:
        option = GpuOption(gpu_id, str(record.get("gpu") or gpu_id or "GPU"), 0, None, None)
    usd = float(record.get("usd_per_hour") or (pod.cost_per_hr if pod is not None else 0.0) or 0.0)
    offer = Offer(option, str(record.get("cloud_type") or "SECURE"), usd, None)
    created = float(record.get("created") or time.time())
    if pod is None:
        pod = Pod(pod_id, pod_name(job_id), "TERMINATED", usd, option.display_name, 1, "", False, None, ())
    # Runtime and cost count from the pod's creation, also across a reattach.
    monotonic = time.monotonic() - max(0.0, time.time() - created)
    return RentedPod(pod, offer, usd, created, monotonic, reused=bool(record.get("reused")))


def reload_inputs(ctx: JobContext, say: Callable[[str], None]) -> str | None:
    """For a process that reattached: read the dataset and plan the GPUs again, as the owner did.

    Returns why not when that is impossible: the dataset file is gone or changed
    since it was sent (a new pod must train on the same rows).
    """
    from unsloth_nb.data import prepare_dataset
    from unsloth_nb.data.remote import can_read_remotely, prepare_from_sample
    from unsloth_nb.errors import UnslothNbError

    config, folder = ctx.config, ctx.folder
    try:
        sent = folder.read_json(SENT_DATASET)
        base_dir = str(folder.read_json(INPUTS_FILE).get("base_dir") or "") or None
    except (OSError, ValueError):
        return "this process reattached to the job and the job folder does not say which dataset was sent"
    # Remote sources were sent as a reference (their revision, ETags and sizes): compare that, not their rows.
    read = prepare_from_sample if can_read_remotely(config.dataset, base_dir) and not config.judge.enabled else prepare_dataset
    try:
        dataset = read(config.dataset, config.train.max_seq_length, base_dir=base_dir)
    except UnslothNbError as exc:
        return f"this process reattached to the job and cannot read its dataset again ({exc})"
    if hashlib.sha256(pack_dataset(dataset)).hexdigest() != sent.get("sha256"):
        return f"the dataset {config.dataset.path} changed since the job started, so a new pod cannot continue it"
    ctx.dataset = dataset
    if ctx.plan is None and ctx.plan_again is not None:
        ctx.plan = ctx.plan_again(dataset.summary)
    say(f"read the dataset again ({len(dataset.train)} rows, as sent) to continue on a new pod")
    return None
