"""Pushing the adapter to the Hub: the real huggingface_hub client against a loopback Hub.

The stand-in answers the calls an upload makes (create the repo, check the model card's
metadata, ask how to upload each file, commit them) and records what arrived, so the test sees which files reached the
Hub, under which repo, with which token, at the address HF_ENDPOINT names.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from unsloth_nb.config import TrainConfig
from unsloth_nb.data import DatasetSummary, PreparedDataset
from unsloth_nb.engine import LogHooks, run_training
from unsloth_nb.events import EventLog


@dataclass
class LoopbackHub:
    url: str
    created: list[dict] = field(default_factory=list)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    authorization: set[str] = field(default_factory=set)
    unexpected: list[str] = field(default_factory=list)


def _handler(hub: LoopbackHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            hub.authorization.add(self.headers.get("Authorization", ""))
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts == ["api", "repos", "create"]:
                request = json.loads(body)
                hub.created.append(request)
                repo = f"{request.get('organization') or 'me'}/{request['name']}"
                self._json({"url": f"{hub.url}/{repo}", "name": repo})
            elif parts == ["api", "validate-yaml"]:  # the model card's metadata
                self._json({"errors": [], "warnings": []})
            elif parts[:2] == ["api", "models"] and parts[4] == "preupload":
                paths = [f["path"] for f in json.loads(body)["files"]]
                self._json({"files": [{"path": p, "uploadMode": "regular", "shouldIgnore": False} for p in paths]})
            elif parts[:2] == ["api", "models"] and parts[4] == "commit":
                repo = "/".join(parts[2:4])
                for line in body.decode().splitlines():
                    entry = json.loads(line)
                    if entry.get("key") == "file":
                        value = entry["value"]
                        hub.files.setdefault(repo, {})[value["path"]] = base64.b64decode(value["content"])
                self._json({"commitUrl": f"{hub.url}/{repo}/commit/{'0' * 40}", "commitOid": "0" * 40})
            else:
                hub.unexpected.append(f"POST {self.path}")
                self._json({"error": "not here"}, status=404)

        def do_GET(self) -> None:
            hub.unexpected.append(f"GET {self.path}")
            self._json({"error": "not here"}, status=404)

        def _json(self, payload: dict, status: int = 200) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def loopback_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackHub]:
    import huggingface_hub.constants

    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    hub = LoopbackHub(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    # The test session runs offline; this one test talks to its own loopback Hub.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()


def test_the_adapter_is_pushed_to_the_hub_that_hf_endpoint_names(
    tiny_model: Path, superbowl_rows: list[dict], tmp_path: Path, loopback_hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_loopback_test_token")
    rows = [
        {"messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["completion"][:80]}]}
        for r in superbowl_rows[:8]
    ]
    dataset = PreparedDataset(
        rows, None, DatasetSummary("superbowl", "messages", len(rows)), origins=[f"r:{i}" for i in range(8)]
    )
    config = TrainConfig.from_dict(
        {
            "model": str(tiny_model),
            "dataset": "rows.jsonl",
            "lora": {"r": 8, "gradient_checkpointing": "false"},
            "train": {"max_steps": 2, "warmup_steps": 0, "batch_size": 4, "grad_accum": 1, "max_seq_length": 256},
            "hub": {"repo_id": "me/tiny-lora", "private": True},
        }
    )
    log = EventLog("hub")

    result = run_training(config, dataset, tmp_path, LogHooks(log))

    assert loopback_hub.unexpected == []
    assert loopback_hub.created[0]["name"] == "tiny-lora"
    assert loopback_hub.created[0]["visibility"] == "private"
    assert loopback_hub.authorization == {"Bearer hf_loopback_test_token"}
    pushed = loopback_hub.files["me/tiny-lora"]
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json"} <= set(pushed)
    assert result.adapter_dir is not None
    assert pushed["adapter_model.safetensors"] == (result.adapter_dir / "adapter_model.safetensors").read_bytes()
    hub_events = [e.data for e in log.read(kinds={"artifact"}) if e["kind"] == "hub"]
    assert hub_events == [
        {
            "name": "hub",
            "path": str(result.adapter_dir),
            "bytes": hub_events[0]["bytes"],
            "kind": "hub",
            "url": f"{loopback_hub.url}/me/tiny-lora",
        }
    ]
    assert "hf_loopback_test_token" not in json.dumps([e.data for e in log.read()])
