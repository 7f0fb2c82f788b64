"""Every answer a provider gave, on disk, so a re-run or a resumed run pays nothing for what it already has.

One small JSON file per request key (sharded by the first two hex digits), written to a temporary name and
renamed into place: a killed process never leaves a half-written entry, and two processes writing the same key
write the same content. No secret is stored: the key hashes the request, never the API key.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from unsloth_nb.llm.types import ChatRequest, Completion


def default_cache_dir() -> Path:
    """``UNSLOTH_NB_LLM_CACHE``, else ``llm-cache`` beside the job folders (``UNSLOTH_NB_HOME``)."""
    override = os.environ.get("UNSLOTH_NB_LLM_CACHE")
    if override:
        return Path(override).expanduser()
    from unsloth_nb.jobrun.store import data_root

    return data_root() / "llm-cache"


class DiskCache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, request: ChatRequest) -> Completion | None:
        path = self._path(request.key)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return Completion.from_json(raw, cached=True)

    def __contains__(self, request: ChatRequest) -> bool:
        return self._path(request.key).is_file()

    def put(self, request: ChatRequest, completion: Completion) -> None:
        path = self._path(request.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"request": {"provider": request.provider, "model": request.model}, **completion.to_json()}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(entry, handle, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


__all__ = ["DiskCache", "default_cache_dir"]
