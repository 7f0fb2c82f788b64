"""Fields the importer maps but this version of unsloth-nb cannot run yet: the one list to edit when they land.

Each entry is a feature the importer writes under the name it will have (issue 17 item 3 for exports and
pushes). Until then the emitted YAML carries them as comments and the report says "not yet supported", instead
of a config that fails. Delete a line once its field exists on main; the importer then writes it live.
"""

from __future__ import annotations

NOT_YET_SUPPORTED: dict[str, str] = {
    "save.gguf": "GGUF export (issue 17 item 3)",
    "save.ollama": "an Ollama Modelfile (issue 17 item 3)",
    "save.merged_4bit": "a merged 4-bit model (issue 17 item 3)",
    "hub.push": "choosing what goes to the Hub: adapter, merged_16bit, gguf (issue 17 item 3)",
}


def supported(feature: str) -> bool:
    return feature not in NOT_YET_SUPPORTED
