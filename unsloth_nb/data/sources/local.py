"""A file or saved ``datasets`` folder on the machine that reads it: the source every other one becomes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unsloth_nb.data.sources.base import SourceFile, SourceInfo


@dataclass
class LocalSource:
    """``path`` as the user wrote it; ``base_dir`` is where a relative one starts."""

    path: str
    base_dir: str | None = None
    kind: str = "local"

    @property
    def display(self) -> str:
        return self.path

    def _file(self) -> SourceFile:
        from unsloth_nb.data.readers import _resolve

        return SourceFile(_resolve(self.path, self.base_dir), self.path)

    def describe(self) -> SourceInfo:
        found = self._file().path
        files = [p for p in sorted(found.rglob("*")) if p.is_file()] if found.is_dir() else [found]
        stats = [p.stat() for p in files]
        size = sum(s.st_size for s in stats)
        version = f"{size}:{max((s.st_mtime_ns for s in stats), default=0)}"
        return SourceInfo("local", self.path, [self.path], bytes=size, version=version)

    def sample(self) -> list[SourceFile]:
        return [self._file()]  # reading a local file from its start is as cheap as a sample

    def open_full(self) -> list[SourceFile]:
        return [self._file()]

    def to_json(self) -> dict[str, Any]:
        absolute = Path(self.path) if Path(self.path).is_absolute() else Path(self.base_dir or Path.cwd()) / self.path
        return {"kind": "local", "path": str(absolute)}
