"""Reading a GGUF back: what it holds, so a test or a user can check an export without loading it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GgufSummary:
    path: Path
    architecture: str | None
    tensors: int
    tensor_types: frozenset[str]
    chat_template: str | None
    eos_token_id: int | None
    bytes: int


def read_gguf(path: Path) -> GgufSummary:
    """Tensors, architecture and chat template of ``path`` (with the ``gguf`` reader; no weights loaded)."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))

    def field(key: str) -> object | None:
        found = reader.get_field(key)
        if found is None:
            return None
        return found.contents()

    architecture = field("general.architecture")
    template = field("tokenizer.chat_template")
    eos = field("tokenizer.ggml.eos_token_id")
    return GgufSummary(
        path=Path(path),
        architecture=str(architecture) if architecture is not None else None,
        tensors=len(reader.tensors),
        tensor_types=frozenset(t.tensor_type.name for t in reader.tensors),
        chat_template=str(template) if template is not None else None,
        eos_token_id=int(eos) if isinstance(eos, int) else None,
        bytes=Path(path).stat().st_size,
    )
