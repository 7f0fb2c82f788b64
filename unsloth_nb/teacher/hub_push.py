"""The enhanced set on the Hub beside the adapter: ``hub.repo_id`` as a dataset repo, with its card.

A dataset repo of the same id lives apart from the model repo on the Hub (``datasets/<id>``), so the adapter and
the rows it was trained on share one name. The repo gets the rows (``train.jsonl``), the teacher's card as
metadata (``teacher_card.json``) and a ``README.md`` dataset card saying how the set was made: teacher model,
prompts by hash, counts per operation, rejections and cost. Provenance (the original answers) stays in the job
folder: the user's own words are not published by a side effect. The repo is private when ``hub.private`` is.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

README = "README.md"
ROWS = "train.jsonl"
CARD = "teacher_card.json"


def dataset_card(card: dict[str, Any], repo_id: str) -> str:
    """A Hub dataset card (YAML front matter the Hub reads, then prose) from the teacher's card."""
    teacher = card.get("teacher") or {}
    cost = card.get("cost") or {}
    counts = card.get("counts") or {}
    rejected = card.get("rejected") or {}
    prompts = card.get("prompts") or {}
    lines = [
        "---",
        "configs:",
        "- config_name: default",
        f"  data_files: {ROWS}",
        "tags:",
        "- unsloth-nb",
        "- synthetic",
        "---",
        "",
        f"# {repo_id.rsplit('/', 1)[-1]}: training rows enhanced by a teacher model",
        "",
        f"Made by unsloth-nb's teacher with {teacher.get('provider', '?')}:{teacher.get('model', '?')} "
        f"({', '.join(card.get('operations') or [])}) from {card.get('rows_in', '?')} rows; "
        f"{card.get('rows_out', '?')} rows here. The adapter trained on them is the model repo of the same name.",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key.replace('_', ' ')} | {value} |" for key, value in counts.items()),
        f"| outputs rejected | {sum(int(v) for v in rejected.values())}"
        + (f" ({', '.join(f'{k}: {v}' for k, v in rejected.items())})" if rejected else "")
        + " |",
        f"| teacher cost | ${float(cost.get('usd', 0.0) or 0.0):.4f} |",
        "",
        "Prompts (by hash; the texts ship with unsloth-nb or were the user's own files):",
        "",
        *(f"- {operation}: `{info.get('file')}` sha256 {info.get('sha256_12')}" for operation, info in prompts.items()),
        "",
        f"The full card is `{CARD}`.",
        "",
    ]
    return "\n".join(lines)


def push_enhanced(rows: Path, card: dict[str, Any], repo_id: str, private: bool) -> str:
    """Upload the enhanced rows and their card to the dataset repo ``repo_id`` (created if needed); its URL."""
    from unsloth_nb.errors import BackendError
    from unsloth_nb.hub import hub_api, hub_endpoint

    api = hub_api(f"to push the enhanced dataset to {repo_id}")
    with tempfile.TemporaryDirectory(prefix="unsloth-nb-dataset-") as tmp:
        folder = Path(tmp)
        shutil.copyfile(rows, folder / ROWS)
        (folder / CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")
        (folder / README).write_text(dataset_card(card, repo_id), encoding="utf-8")
        try:
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="dataset")
            api.upload_folder(
                repo_id=repo_id, folder_path=str(folder), repo_type="dataset", commit_message="unsloth-nb: enhanced dataset"
            )
        except Exception as exc:  # network and permission failures: the rows are safe in the job folder
            raise BackendError(f"pushing the enhanced dataset to {repo_id} on {hub_endpoint()} failed: {exc}") from exc
    return f"{hub_endpoint()}/datasets/{repo_id}"


__all__ = ["dataset_card", "push_enhanced"]
