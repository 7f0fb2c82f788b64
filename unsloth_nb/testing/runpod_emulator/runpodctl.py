"""A stand-in for ``runpodctl`` inside emulated pods: just enough for a pod to end itself.

Real pods ship ``runpodctl`` with a pod-scoped key, and a start command's usual
last word is ``runpodctl remove pod $RUNPOD_POD_ID`` so a finished pod stops
billing. This script answers the same commands against the emulator (GraphQL at
``$RUNPOD_API_BASE_URL`` with ``$RUNPOD_API_KEY``). It is run by file path from a
shell wrapper, so it uses the standard library only and imports nothing of ours.

Supported: ``remove pod ID``, ``pod delete ID``, ``stop pod ID``, ``pod stop ID``, ``get pod [ID]``.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

_USAGE = "usage: runpodctl (remove pod|pod delete|stop pod|pod stop|get pod) [POD_ID]"


def _graphql(query: str) -> dict[str, object]:
    base = os.environ.get("RUNPOD_API_BASE_URL", "https://api.runpod.io")
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {os.environ.get('RUNPOD_API_KEY', '')}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        raise SystemExit(f"runpodctl: HTTP {exc.code}: {body[:200]}") from None


def main(argv: list[str]) -> int:
    words = [w.lower() for w in argv[:2]]
    pod_id = argv[2] if len(argv) > 2 else os.environ.get("RUNPOD_POD_ID", "")
    literal = json.dumps(pod_id)
    if words in (["remove", "pod"], ["pod", "delete"], ["pod", "remove"]):
        query = f"mutation {{ podTerminate(input: {{ podId: {literal} }}) }}"
    elif words in (["stop", "pod"], ["pod", "stop"]):
        query = f"mutation {{ podStop(input: {{ podId: {literal} }}) {{ id desiredStatus }} }}"
    elif words in (["get", "pod"], ["pod", "get"]):
        query = f"query {{ pod(input: {{ podId: {literal} }}) {{ id name desiredStatus }} }}"
    else:
        print(_USAGE, file=sys.stderr)
        return 2
    answer = _graphql(query)
    errors = answer.get("errors")
    if isinstance(errors, list) and errors:
        print(f"runpodctl: {errors[0].get('message')}", file=sys.stderr)
        return 1
    print(json.dumps(answer.get("data")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
