"""The loopback Hub and S3 server the remote bad inputs read: started once per test process, on first use.

The Hub holds ``acme/qa`` (train and test splits) and the private ``acme/private-qa``; S3
holds ``s3://acme-data/broken.jsonl``, 13,000 rows whose row 12,345 is not valid JSON.
"""

from __future__ import annotations

import json
from contextlib import ExitStack

from unsloth_nb.testing.hub_emulator import LoopbackHub
from unsloth_nb.testing.s3_emulator import LoopbackS3

_stores: dict[str, str] = {}
_open = ExitStack()


def _rows(count: int) -> list[str]:
    return [json.dumps({"question": f"Question {i}?", "answer": f"Answer {i}."}) for i in range(count)]


def remote_places() -> dict[str, str]:
    """``{"hub": url, "s3": url}``, starting the servers the first time (they live as long as the process)."""
    if not _stores:
        hub = _open.enter_context(LoopbackHub(token="hf_loopback_bad_inputs"))
        qa = ("\n".join(_rows(8)) + "\n").encode()
        hub.add_dataset("acme/qa", {"data/train-00000-of-00001.jsonl": qa, "data/test-00000-of-00001.jsonl": qa})
        hub.add_dataset("acme/private-qa", {"train.jsonl": qa}, private=True)
        s3 = _open.enter_context(LoopbackS3())
        lines = _rows(13_000)
        lines[12_344] = lines[12_344][:-1]
        s3.put("acme-data", "broken.jsonl", ("\n".join(lines) + "\n").encode())
        _stores.update(hub=hub.url, s3=s3.url)
    return dict(_stores)
