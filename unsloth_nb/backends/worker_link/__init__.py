"""Talking to our worker wherever it runs: any backend that hosts ``unsloth_nb.worker`` reuses this.

The worker (``unsloth_nb.worker``) is a small authenticated HTTP agent; these modules
are the client side of its wire format (:mod:`unsloth_nb.worker.protocol`), with
nothing in them about how the machine under the worker was rented:

- :mod:`.client`: HTTP to the worker through a proxy that drops, times out and
  rate-limits (retries, resumable chunked uploads, ranged and checked downloads);
  its answers are the typed dataclasses of the protocol module;
- :mod:`.relay`: the worker's events into the job's log, with a per-host record of
  every remote event received;
- :mod:`.transfer`: checkpoints up to a new host, results down at the end;
- :mod:`.checkpoints`: the client's own copy of the newest checkpoint, kept while
  the remote job trains.

Pod lifecycle (renting, readiness, billing, termination) lives in ``backends/runpod``.
"""
