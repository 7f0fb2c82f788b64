"""The teacher's prompts: one Markdown file per operation, replaceable by the user's own (``teacher.prompts``).

Placeholders are filled by plain replacement (braces in a question cannot break a prompt). A prompt is named in
the dataset card by the first 12 hex digits of its SHA-256, so two enhanced sets say whether they were written
with the same instructions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from unsloth_nb.errors import ConfigError

PROMPTS_DIR = Path(__file__).parent / "prompts"
#: Placeholders each operation's prompt must keep.
REQUIRED: dict[str, tuple[str, ...]] = {
    "improve": ("{question}", "{answer}"),
    "paraphrase": ("{question}", "{n}"),
    "generate": ("{chunk}", "{n}"),
}


@dataclass(frozen=True)
class Prompt:
    operation: str
    text: str
    path: str

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:12]

    def fill(self, **values: str | int) -> str:
        text = self.text
        for name, value in values.items():
            text = text.replace("{" + name + "}", str(value))
        return text


def load_prompt(operation: str, folder: str | Path | None = None) -> Prompt:
    """``folder/<operation>.md`` when the user's folder has one, else ours; a user's must keep the placeholders."""
    mine = Path(folder).expanduser() / f"{operation}.md" if folder else None
    where = mine if mine is not None and mine.is_file() else PROMPTS_DIR / f"{operation}.md"
    if folder and not Path(folder).expanduser().is_dir():
        raise ConfigError("teacher.prompts", f"{folder}: no such folder (copy {PROMPTS_DIR} and edit the files)")
    text = where.read_text(encoding="utf-8")
    missing = [p for p in REQUIRED.get(operation, ()) if p not in text]
    if missing:
        raise ConfigError(
            "teacher.prompts", f"{where}: the {operation} prompt must contain {', '.join(missing)} (see {PROMPTS_DIR})"
        )
    return Prompt(operation, text, str(where))


__all__ = ["PROMPTS_DIR", "Prompt", "load_prompt"]
