"""Documents the teacher writes Q&A from: .txt, .md and .pdf, cut into chunks that each generated row cites.

A chunk is at most ``chunk_chars`` characters, cut at paragraph breaks where possible (else at sentence ends,
else hard), so a question and its answer come from one coherent passage. Each chunk is named
``<file>#chunk<k>`` (k from 1), and for a PDF also by its first page: that name is the row's provenance.
PDF text comes from pypdf (``pip install "unsloth-nb[pdf]"``), imported only when a PDF is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from unsloth_nb.errors import ConfigError

DOCUMENT_SUFFIXES = (".txt", ".md", ".pdf")


@dataclass(frozen=True)
class Chunk:
    document: str  # the file name, as cited
    number: int  # 1-based
    text: str
    page: int | None = None  # a PDF's first page of this chunk (1-based)

    @property
    def cite(self) -> str:
        page = f" (p. {self.page})" if self.page is not None else ""
        return f"{self.document}#chunk{self.number}{page}"


def read_pages(path: Path) -> list[str]:
    """The document's text, one entry per page (a text file is one page)."""
    if not path.is_file():
        raise ConfigError("teacher.documents", f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in DOCUMENT_SUFFIXES:
        raise ConfigError("teacher.documents", f"{path}: the teacher reads {', '.join(DOCUMENT_SUFFIXES)} files")
    if suffix != ".pdf":
        try:
            return [path.read_text(encoding="utf-8")]
        except UnicodeDecodeError as exc:
            raise ConfigError(
                "teacher.documents", f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
            ) from None
    try:
        import pypdf
    except ImportError:
        raise ConfigError("teacher.documents", f'{path}: reading PDFs needs pypdf: pip install "unsloth-nb[pdf]"') from None
    try:
        reader = pypdf.PdfReader(str(path))
        return [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # pypdf raises many types for a damaged file
        raise ConfigError("teacher.documents", f"{path}: not a readable PDF ({type(exc).__name__}: {exc})") from None


def _pieces(text: str, limit: int) -> list[str]:
    """Paragraphs, split further at sentence ends, then hard, so no piece is longer than ``limit``."""
    out: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        if len(paragraph) <= limit:
            out.append(paragraph)
            continue
        sentence = ""
        for part in re.split(r"(?<=[.!?])\s+", paragraph):
            while len(part) > limit:
                out.append(part[:limit])
                part = part[limit:]
            if sentence and len(sentence) + 1 + len(part) > limit:
                out.append(sentence)
                sentence = part
            else:
                sentence = f"{sentence} {part}".strip()
        if sentence:
            out.append(sentence)
    return out


def chunk_document(path: str | Path, chunk_chars: int = 3000) -> list[Chunk]:
    path = Path(path).expanduser()
    chunks: list[Chunk] = []
    current, first_page = "", None
    for page_number, page in enumerate(read_pages(path), start=1):
        for piece in _pieces(page, chunk_chars):
            if current and len(current) + 2 + len(piece) > chunk_chars:
                chunks.append(Chunk(path.name, len(chunks) + 1, current, first_page))
                current, first_page = "", None
            current = f"{current}\n\n{piece}".strip()
            first_page = first_page or (page_number if path.suffix.lower() == ".pdf" else None)
    if current:
        chunks.append(Chunk(path.name, len(chunks) + 1, current, first_page))
    if not chunks:
        raise ConfigError("teacher.documents", f"{path}: no text found (a scanned PDF needs OCR first)")
    return chunks


__all__ = ["DOCUMENT_SUFFIXES", "Chunk", "chunk_document", "read_pages"]
