"""``unsloth-nb runpod endpoints list|delete``: the serverless endpoints unsloth-nb created (``unsloth-nb-*``)."""

from __future__ import annotations

import sys

from unsloth_nb.backends.runpod_serverless.endpoints import EndpointInfo, EndpointsApi, remove

USAGE = """usage: unsloth-nb runpod endpoints list | delete ENDPOINT_ID... | delete --all [--yes]

  list                   unsloth-nb's serverless endpoints (training and serving), with their workers
  delete ENDPOINT_ID...  delete endpoints and their templates (their workers end with them)
  delete --all [--yes]   delete every unsloth-nb endpoint that no live job in this process uses
"""


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    api = EndpointsApi()
    if argv[0] in ("list", "ls"):
        ours = api.ours()
        if not ours:
            print("no unsloth-nb endpoints")
        for e in ours:
            print(f"{e.id}  {e.name}  workers {e.workers} (min {e.workers_min}, max {e.workers_max})")
        return 0
    if argv[0] == "delete":
        ids = [a for a in argv[1:] if not a.startswith("-")]
        if "--all" in argv:
            return 0 if cleanup(api, yes="--yes" in argv or "-y" in argv) is not None else 2
        if not ids:
            print(USAGE, file=sys.stderr)
            return 2
        known = {e.id: e for e in api.endpoints()}
        for endpoint_id in ids:
            remove(api, known.get(endpoint_id) or EndpointInfo(endpoint_id, "", "", 0, 0, 0))
            print(f"endpoint {endpoint_id} deleted")
        return 0
    print(f"unsloth-nb runpod endpoints: unknown command {argv[0]!r}\n\n{USAGE}", file=sys.stderr)
    return 2


def cleanup(api: EndpointsApi | None = None, *, yes: bool = False, dry_run: bool = False) -> list[str] | None:
    """Delete unsloth-nb endpoints no live job here uses; the ids deleted, or None when the user declined."""
    from unsloth_nb.backends.runpod_serverless.backend import live_endpoint_ids

    api = api or EndpointsApi()
    live = live_endpoint_ids()
    doomed = [e for e in api.ours() if e.id not in live]
    if not doomed:
        return []
    for e in doomed:
        print(f"unsloth-nb endpoint {e.id} ({e.name}, {e.workers} worker(s))")
    if dry_run:
        return []
    if not yes and (not sys.stdin.isatty() or input(f"Delete these {len(doomed)} endpoint(s)? [y/N] ").strip().lower() != "y"):
        print("no endpoint deleted (pass --yes to confirm when not running interactively)")
        return None
    for e in doomed:
        remove(api, e)
    print(f"{len(doomed)} endpoint(s) deleted")
    return [e.id for e in doomed]
