"""The pod worker: ``python -m unsloth_nb.worker [--host H] [--port P] [--dir D]``.

A small HTTP service that runs on a RunPod pod (or, in tests and the emulator, as a
local process). It receives one training job, runs the engine in-process, and serves
the job's events and files to the client through the pod's HTTP proxy. Standard
library only (``http.server``, ``urllib``); the training stack is imported when the job
starts, so the client can import this package (``protocol`` above all) without torch.

Environment
-----------
``UNSLOTH_NB_WORKER_TOKEN``
    Required (16+ characters). Every request must carry ``Authorization: Bearer <token>``.
``UNSLOTH_NB_WORKER_PORT``
    Port, default 8000. Under the RunPod emulator, ``UNSLOTH_NB_EMULATOR_PORT_<port>``
    names the loopback port that container port really listens on, and
    ``UNSLOTH_NB_EMULATOR_HOST`` the address (``--host`` wins over both).
``UNSLOTH_NB_WORKER_DIR``
    Work folder; default ``/workspace/unsloth-nb`` when /workspace is writable (the pod
    volume survives a container restart), else ``~/unsloth-nb-worker``.
``UNSLOTH_NB_WORKER_LAST_EXIT``
    Set by the pod's start-up script when it starts the worker again after the previous
    one died of a signal (the OOM killer, a segfault): that one's exit status, which the
    new worker reports together with the dead one's last log lines.
``UNSLOTH_NB_WORKER_IDLE_TIMEOUT``
    Seconds without an authorised request, while no training runs, after which the
    worker terminates its pod and exits (default 900). Probes (``GET /health``,
    ``GET /job``) do not count: only a client following or giving the job does.
``RUNPOD_POD_ID``, ``RUNPOD_API_KEY``, ``RUNPOD_API_BASE_URL``
    Injected by RunPod (the key is pod-scoped); used only to terminate this pod (REST v2
    ``DELETE /v2/pods/{id}``, GraphQL ``podTerminate`` while it is served). Without
    ``RUNPOD_POD_ID`` the worker just exits.
``UNSLOTH_NB_BOOT_REPORT``
    Set by the pod's boot script: the JSON file in which stage 0 wrote the image's torch
    and CUDA versions and how the install went; reported once as a ``log`` event (source
    ``pod``) when the job starts.

Secrets (HF_TOKEN) are not in the pod's environment, which RunPod lets the account read
back: they arrive in the authenticated ``POST /job/start`` body, live in this process's
memory only (its environment, where the libraries look) and are redacted like the rest.
A start is refused (400, naming it) when a secret the job's phases must have did not come.

The token and the RunPod key are removed from the process environment after start-up;
the values of every secret-looking variable (``*TOKEN*``, ``*KEY*``, ``*SECRET*``,
``*PASSWORD*``) are replaced by ``<redacted>`` in events, error messages and logs. No
answer ever contains the token or environment values.

HTTP API (JSON unless noted; every route answers 401 ``{"error": "unauthorized"}`` without the token)
----------------------------------------------------------------------------------------------------
``GET /health``
    ``{"ok": true, "worker_version", "job_id", "state", "bytes_received", "dataset_bytes", "last_seq",
    "checkpoint"}`` (``checkpoint``: the newest complete checkpoint's artifact name, or null).
    States: ``idle`` (no job), ``receiving`` (declared, dataset uploading), ``starting``,
    ``training``, ``saving``, ``succeeded``, ``failed``, ``cancelled``, and ``interrupted``
    (the worker restarted mid-run; ``POST /job/start`` resumes from the newest checkpoint;
    when the previous process died, a ``log`` event at level ``error`` carries its last log lines).
``PUT /job``
    Body ``{"job_id", "config": TrainConfig dict, "dataset_sha256", "dataset_bytes"}`` (at most
    1 MiB). Idempotent for the same job; 409 for another job id. Answers like ``GET /job``.
``GET /job``
    ``{"job_id", "state", "bytes_received", "dataset_bytes", "last_seq", "checkpoint"}``.
``PUT /job/dataset``
    Raw bytes of :func:`protocol.pack_dataset`, in chunks of at most 8 MiB, each with
    ``Content-Range: bytes START-END/TOTAL`` (or ``?offset=START``). START may not pass what
    is already stored (409 with ``bytes_received``); a chunk starting earlier replaces
    everything from START (a retried chunk). Answers ``{"bytes_received", "dataset_bytes"}``.
``GET /job/dataset``
    ``{"bytes_received", "dataset_bytes"}``: where an interrupted upload resumes.
``POST /job/start``
    Checks the size (409 if incomplete) and sha256 (400 if different: upload again from
    0), reads the rows, checks the config's needs (HF_TOKEN for a Hub push), then runs
    the engine in a thread. Answers ``GET /job``'s fields plus ``"resumed_from"`` (the
    checkpoint's artifact name, or null). An optional body ``{"secrets": {"HF_TOKEN": ...},
    "hub_checkpoint": "checkpoint-N"}``: ``secrets`` are kept in memory only (every start
    sends them again); ``hub_checkpoint`` (a job moving to a new pod) first downloads the newest checkpoint of
    the job's Hub checkpoint repo, which must be at least that step, unless one as new is here.
    While training, each checkpoint is also pushed to that repo (``<hub.repo_id>-checkpoints``,
    private) when the config has ``hub.repo_id`` and ``hub.push_checkpoints`` and no network
    volume; a ``checkpoint`` event with a ``url`` says when a push landed.
``POST /job/cancel``
    Sets the stop flag; the engine saves a checkpoint and the adapter and the job ends
    ``cancelled``. Before training starts it ends the job at once.
``GET /events?after=N&timeout=T``
    Long poll: waits up to min(T, 25) s for an event with ``seq > N`` and answers
    ``{"job_id", "events": [Event dicts], "state", "last_seq", "more"}`` (at most 1000 events;
    ``more`` says ask again at once). Events are the job's EventLog, persisted in
    ``events.jsonl``, so a restarted worker serves the same history and seqs. The worker's
    own events: ``log`` (source ``worker``), ``status`` for each state change (with
    ``previous`` and ``reason``), and on failure ``error`` with ``message``, ``error_type``
    and ``log_tail`` (the last lines of the worker's log). ``path`` in ``artifact`` and
    ``checkpoint`` events is the artifact name (relative to the output folder).
``GET /artifacts?prefix=P&sha256=1``
    A JSON list ``[{"name", "bytes", "sha256"}]`` of the files under the job's output folder
    (``adapter/...``, ``checkpoints/checkpoint-N/...``, ``merged_16bit/...``); ``sha256=0``
    skips hashing. Files are hashed when saved, in the background; a listing hashes at
    most 256 MiB itself and gives ``"sha256": null`` for a file still being hashed (ask
    again): no request takes time that grows with the model (RunPod's proxy allows 100 s).
``GET /artifacts/<name>`` (and ``HEAD``)
    The file's bytes (``application/octet-stream``), with ``Accept-Ranges: bytes``; a
    ``Range: bytes=A-B`` / ``A-`` / ``-N`` header gets 206 and ``Content-Range`` so a broken
    download resumes, 416 past the end. ``..`` (plain or percent-encoded), absolute paths
    and symlinks resolving outside the output folder are 403; missing files 404.
``PUT /artifacts/checkpoints/checkpoint-N/<file>``
    A checkpoint to resume from, for a job that moves to a new pod: raw bytes in chunks
    with ``Content-Range`` (``bytes */0`` for an empty file), placed like the dataset's
    (409 with ``bytes_received`` for a hole). Only under ``checkpoints/checkpoint-N/`` and
    only before ``POST /job/start``; send ``trainer_state.json`` last, since a folder
    counts as a checkpoint once that file is there. Answers ``{"name", "bytes_received", "bytes"}``.
``GET /artifacts.tar?prefix=P``
    The files under P as one streamed, uncompressed tar (members named as in the listing;
    no Content-Length, the connection closes at the end). Not resumable: for large
    folders fetch files one by one, and check either way against the listing's sha256.
``POST /shutdown``
    ``{"ok": true, "terminating_pod": bool}``; then the worker stops training, terminates
    its pod (on RunPod) and exits. Call it after everything is downloaded.

Errors are ``{"error": "<what to do>"}`` with 400 (bad input), 401, 403, 404, 405, 409
(wrong state), 411 (no Content-Length), 413 (JSON body over 1 MiB, chunk over 8 MiB) or 416.

Ending the pod
--------------
Only authorised requests count as activity, so strangers probing the public proxy
cannot keep a pod alive. Exit codes (see :mod:`unsloth_nb.worker.main`): 0 after
``/shutdown`` or the idle timeout (pod terminated, or not on RunPod); 3 when that
terminate call failed; 1 or 2 after a fatal start-up or server error (the worker
tried to terminate the pod first); 128+N after signal N (the pod is left alone). A
start command can therefore end with ``runpodctl remove pod $RUNPOD_POD_ID`` for
codes 0-3 and let RunPod restart the container otherwise (the restarted worker
reports ``interrupted`` and its idle timeout still guards the bill).
"""

from __future__ import annotations

from unsloth_nb import __version__ as WORKER_VERSION

__all__ = ["WORKER_VERSION"]
