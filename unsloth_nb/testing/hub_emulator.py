"""A loopback Hugging Face Hub for tests: the calls ``huggingface_hub`` makes to push and fetch files.

It answers the unmodified client: create a repo, validate a model card, ask how to
upload each file, commit (added files inline, deleted files and folders), list a
repo's tree, describe a revision, and serve files (HEAD for metadata, GET for bytes).
Every upload is "regular" (inline base64), which the real client handles like any
small file; nothing here speaks LFS or Xet.

Repos keep their files in memory; ``hub.files[repo_id]`` maps path -> bytes, and
``hub.commits`` the commits in order, so a test sees what reached the Hub. Private
repos answer 401 to a request without the right token, as the Hub does.

Use it as a context manager; point the process (and, through the emulator's
inherited variables, its pods) at it with ``HF_ENDPOINT=hub.url`` and
``HF_HUB_OFFLINE=0``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from unsloth_nb.testing.loopback_http import LoopbackHandler

_REVISIONS = ("main",)


@dataclass
class HubCommit:
    repo_id: str
    message: str
    added: list[str]
    deleted: list[str]


@dataclass
class LoopbackHub:
    """The Hub's state; :attr:`url` is what ``HF_ENDPOINT`` should be."""

    token: str | None = None  # when set, only this token may write or read private repos
    url: str = ""
    created: list[dict[str, Any]] = field(default_factory=list)
    private: dict[str, bool] = field(default_factory=dict)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    commits: list[HubCommit] = field(default_factory=list)
    authorization: set[str] = field(default_factory=set)
    gated: set[str] = field(default_factory=set)  # dataset repos that answer GatedRepo to every read without the token
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)  # dataset repo -> its card's metadata (cardData)
    reads: list[str] = field(default_factory=list)  # "GET|HEAD path [Range]" of every file served
    unexpected: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> LoopbackHub:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, name="loopback-hub", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def sha(self, repo_id: str) -> str:
        """A commit id that changes with every commit to the repo."""
        with self._lock:
            count = sum(1 for c in self.commits if c.repo_id == repo_id)
        return hashlib.sha1(f"{repo_id}:{count}".encode()).hexdigest()

    def add_dataset(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        private: bool = False,
        gated: bool = False,
        card: dict[str, Any] | None = None,
    ) -> None:
        """A dataset repo, as ``huggingface_hub`` and ``datasets`` see it under ``/api/datasets`` and ``/datasets``."""
        key = dataset_key(repo_id)
        with self._lock:
            self.files[key] = dict(files)
            self.private[key] = private
            if gated:
                self.gated.add(key)
            if card is not None:
                self.cards[key] = card
            self.commits.append(HubCommit(key, "initial dataset", sorted(files), []))

    def folders(self, repo_id: str) -> set[str]:
        """Top-level folders of a repo, e.g. {"checkpoint-6"}."""
        return {path.split("/", 1)[0] for path in self.files.get(repo_id, {}) if "/" in path}


def _handler(hub: LoopbackHub) -> type[LoopbackHandler]:
    class Handler(LoopbackHandler):
        disable_nagle_algorithm = False  # Nagle stays on here, as it always was; LoopbackHandler turns it off

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

        # -------------------------------------------------------------- routing
        def do_POST(self) -> None:
            body = self.read_body()
            parts = self._parts()
            if not self._authorized(write=True):
                return
            if parts == ["api", "repos", "create"]:
                self._create(json.loads(body))
            elif parts == ["api", "validate-yaml"]:  # the model card's metadata
                self._json({"errors": [], "warnings": []})
            elif len(parts) >= 5 and parts[:2] in (["api", "models"], ["api", "datasets"]) and parts[4] == "preupload":
                paths = [f["path"] for f in json.loads(body)["files"]]
                self._json({"files": [{"path": p, "uploadMode": "regular", "shouldIgnore": False} for p in paths]})
            elif len(parts) >= 5 and parts[:2] in (["api", "models"], ["api", "datasets"]) and parts[4] == "commit":
                repo = "/".join(parts[2:4])
                self._commit(dataset_key(repo) if parts[1] == "datasets" else repo, body)
            else:
                self._unexpected()

        def do_GET(self) -> None:
            self._read(head=False)

        def do_HEAD(self) -> None:
            self._read(head=True)

        def _read(self, head: bool) -> None:
            parts = self._parts()
            if len(parts) == 4 and parts[:2] == ["api", "datasets"]:
                parts = [*parts, "revision", "main"]  # dataset_info without a revision asks /api/datasets/org/name
            if len(parts) >= 5 and parts[:2] == ["api", "datasets"] and parts[4] in ("tree", "revision"):
                parts = ["api", "models", *parts[2:4], parts[4], *parts[5:]]
                parts[2:4] = ["datasets/" + parts[2], parts[3]]  # the repo key "datasets/org/name" below
            elif len(parts) >= 6 and parts[0] == "datasets" and parts[3] == "resolve":
                parts = ["datasets/" + parts[1], *parts[2:]]
            if len(parts) >= 5 and parts[:2] == ["api", "models"] and parts[4] in ("tree", "revision"):
                repo = "/".join(parts[2:4])
                if not self._exists(repo) or not self._authorized(repo=repo) or not self._revision(repo, parts[5:6]):
                    return
                if parts[4] == "revision":
                    self._json(self._info(repo), head=head)
                else:
                    prefix = "/".join(parts[6:])
                    query = parse_qs(urlsplit(self.path).query)
                    recursive = (query.get("recursive") or ["false"])[0].lower() == "true"
                    self._json(self._tree(repo, prefix, recursive), head=head)
            elif len(parts) >= 5 and parts[2] == "resolve":
                repo, path = "/".join(parts[:2]), "/".join(parts[4:])
                if not self._exists(repo) or not self._authorized(repo=repo) or not self._revision(repo, parts[3:4]):
                    return
                data = hub.files[repo].get(path)
                if data is None:
                    self._json({"error": f"{path} not found"}, status=404, head=head, error_code="EntryNotFound")
                    return
                etag = f'"{hashlib.sha1(data).hexdigest()}"'
                headers = {"ETag": etag, "X-Repo-Commit": hub.sha(repo)}
                wanted = self.headers.get("Range", "")
                hub.reads.append(f"{self.command} {repo}/{path} {wanted}".rstrip())
                status, data = _ranged(data, wanted, headers)
                self.send_bytes(status, data, "application/octet-stream", headers, head=head)
            elif parts == ["api", "agent-harnesses"]:  # the client's own once-a-day lookup, not part of any upload
                self._json({"error": "not here"}, status=404)
            else:
                self._unexpected()

        # -------------------------------------------------------------- the Hub's answers
        def _create(self, request: dict[str, Any]) -> None:
            repo = f"{request.get('organization') or 'me'}/{request['name']}"
            if request.get("type") == "dataset":  # a dataset repo lives apart from a model of the same name
                repo = dataset_key(repo)
            with hub._lock:
                hub.created.append(request)
                hub.files.setdefault(repo, {})
                hub.private.setdefault(repo, request.get("visibility", "public") == "private" or bool(request.get("private")))
            name = repo.removeprefix("datasets/")
            self._json({"url": f"{hub.url}/{repo}", "name": name, "id": name})

        def _commit(self, repo: str, body: bytes) -> None:
            if not self._exists(repo):
                return
            added: list[str] = []
            deleted: list[str] = []
            message = ""
            with hub._lock:
                files = hub.files[repo]
                for line in body.decode().splitlines():
                    entry = json.loads(line)
                    key, value = entry.get("key"), entry.get("value") or {}
                    if key == "header":
                        message = str(value.get("summary") or "")
                    elif key == "file":
                        files[value["path"]] = base64.b64decode(value["content"])
                        added.append(value["path"])
                    elif key == "deletedFile":
                        files.pop(value["path"], None)
                        deleted.append(value["path"])
                    elif key == "deletedFolder":
                        folder = value["path"].rstrip("/") + "/"
                        for path in [p for p in files if p.startswith(folder)]:
                            del files[path]
                        deleted.append(folder)
                    else:
                        hub.unexpected.append(f"commit entry {key}")
                hub.commits.append(HubCommit(repo, message, added, deleted))
            sha = hub.sha(repo)
            self._json({"commitUrl": f"{hub.url}/{repo}/commit/{sha}", "commitOid": sha, "pullRequestUrl": None})

        def _info(self, repo: str) -> dict[str, Any]:
            files = hub.files[repo]
            name = repo.removeprefix("datasets/")
            extra: dict[str, Any] = {"cardData": hub.cards[repo]} if repo in hub.cards else {}
            if repo.startswith("datasets/"):
                extra["gated"] = "auto" if repo in hub.gated else False
            return {
                **extra,
                "id": name,
                "modelId": name,
                "sha": hub.sha(repo),
                "private": hub.private.get(repo, False),
                "siblings": [{"rfilename": path, "size": len(data)} for path, data in sorted(files.items())],
            }

        def _tree(self, repo: str, prefix: str, recursive: bool) -> list[dict[str, Any]]:
            base = prefix.rstrip("/") + "/" if prefix else ""
            entries: dict[str, dict[str, Any]] = {}
            for path, data in sorted(hub.files[repo].items()):
                if not path.startswith(base):
                    continue
                rest = path[len(base) :]
                if recursive:
                    for depth in range(1, rest.count("/") + 1):
                        folder = base + "/".join(rest.split("/")[:depth])
                        entries.setdefault(folder, {"type": "directory", "path": folder, "oid": "0" * 40})
                    entries[path] = {"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                elif "/" in rest:
                    folder = base + rest.split("/", 1)[0]
                    entries.setdefault(folder, {"type": "directory", "path": folder, "oid": "0" * 40})
                else:
                    entries[path] = {"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
            return list(entries.values())

        # -------------------------------------------------------------- plumbing
        def _parts(self) -> list[str]:
            return [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/") if p]

        def _exists(self, repo: str) -> bool:
            if repo in hub.files:
                return True
            self._json({"error": f"Repository {repo} not found"}, status=404, error_code="RepoNotFound")
            return False

        def _revision(self, repo: str, given: list[str]) -> bool:
            """Dataset repos answer "main" and their current commit; any other revision is not there."""
            revision = given[0] if given else "main"
            if not repo.startswith("datasets/") or revision in (*_REVISIONS, hub.sha(repo)):
                return True
            self._json({"error": f"Invalid rev id: {revision}"}, status=404, error_code="RevisionNotFound")
            return False

        def _authorized(self, *, write: bool = False, repo: str | None = None) -> bool:
            given = self.headers.get("Authorization", "")
            hub.authorization.add(given)
            if repo in hub.gated and not (hub.token is not None and given == f"Bearer {hub.token}"):
                self._json({"error": "Access to this dataset is restricted"}, status=403, error_code="GatedRepo")
                return False
            needs_token = write or (repo is not None and hub.private.get(repo, False))
            if not needs_token or hub.token is None or given == f"Bearer {hub.token}":
                return True
            self._json({"error": "Invalid credentials"}, status=401)
            return False

        def _unexpected(self) -> None:
            hub.unexpected.append(f"{self.command} {self.path}")
            self._json({"error": "not here"}, status=404)

        def _json(self, payload: Any, status: int = 200, head: bool = False, error_code: str | None = None) -> None:
            self.send_json(status, payload, {"X-Error-Code": error_code} if error_code else None, head=head)

    return Handler


def dataset_key(repo_id: str) -> str:
    """Where a dataset repo's files live in :attr:`LoopbackHub.files` (apart from a model of the same name)."""
    return f"datasets/{repo_id}"


def _ranged(data: bytes, wanted: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """``Range: bytes=a-b`` (or ``a-``, ``-n``) as the Hub's storage answers it: 206 with the slice."""
    if not wanted.startswith("bytes="):
        return 200, data
    first, _, last = wanted.removeprefix("bytes=").split(",")[0].partition("-")
    if not first:
        start, end = max(0, len(data) - int(last or 0)), len(data) - 1
    else:
        start, end = int(first), min(len(data) - 1, int(last) if last else len(data) - 1)
    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
    return 206, data[start : end + 1]


__all__ = ["HubCommit", "LoopbackHub", "dataset_key"]
