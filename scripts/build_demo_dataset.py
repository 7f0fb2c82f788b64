"""Rebuild the demo's bundled Super Bowl LIX subset from a full copy of the dataset.

The demo must run offline from an installed package, so it ships a small subset
of ml-explore/mlx-examples' wwdc25 Super Bowl LIX Q&A (MIT licence, Copyright (c)
2023 Apple Inc.; the licence travels beside the subset). Rows are the first
ROWS whose prompt and completion together are shorter than MAX_CHARS, in file
order, so that 40 steps at max_seq_length 256 fit in the demo's time budget.

    python scripts/build_demo_dataset.py PATH/TO/superbowl-qa/train.jsonl

PATH is a full copy of wwdc25/data/train.jsonl (1,800 rows); the repository keeps only the subset.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROWS = 200
MAX_CHARS = 300
TARGET = Path(__file__).resolve().parent.parent / "unsloth_nb" / "demo_data" / "superbowl_qa_demo.jsonl"


def main(source: str) -> None:
    picked = []
    with open(source, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if len(row["prompt"]) + len(row["completion"]) < MAX_CHARS:
                picked.append({"prompt": row["prompt"], "completion": row["completion"]})
            if len(picked) == ROWS:
                break
    TARGET.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in picked), encoding="utf-8")
    print(f"wrote {len(picked)} rows to {TARGET}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/build_demo_dataset.py PATH/TO/superbowl-qa/train.jsonl")
    main(sys.argv[1])
