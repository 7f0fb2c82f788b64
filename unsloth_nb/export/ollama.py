"""An Ollama Modelfile whose TEMPLATE is the chat template the model was trained with.

Ollama's templates are Go templates, HF's are Jinja: no general translation exists, so we use
Unsloth's own table of Ollama templates (``unsloth.ollama_template_mappers``), chosen the way the
training chose its chat template: ``model.chat_template`` by name, else the template Unsloth attached
to the tokenizer, else Unsloth's model-name table, else the family the tokenizer's own Jinja template
belongs to (by its turn markers). The tokenizer's end-of-sequence token is always a stop token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unsloth_nb.errors import BackendError

MODELFILE = "Modelfile"

#: A tokenizer's own Jinja template -> the Unsloth template of the same turn format, by a marker only
#: that format writes. Checked in order (Llama 3's header tokens before anything generic).
TEMPLATE_FAMILIES = (
    ("<|start_header_id|>", "llama-3.1"),
    ("<start_of_turn>", "gemma-3"),
    ("<|im_start|>", "chatml"),
    ("<|user|>", "phi-3"),
    ("[INST]", "mistral"),
)


def ollama_template_name(tokenizer: Any, chat_template: str | None, base_model: str) -> str | None:
    """The name of the Unsloth Ollama template matching how this tokenizer formats chats, or None."""
    from unsloth.chat_templates import CHAT_TEMPLATES
    from unsloth.ollama_template_mappers import MODEL_TO_OLLAMA_TEMPLATE_MAPPER

    if chat_template and chat_template in CHAT_TEMPLATES:
        return chat_template
    by_name = MODEL_TO_OLLAMA_TEMPLATE_MAPPER.get(base_model)
    if by_name:
        return str(by_name)
    jinja = str(getattr(tokenizer, "chat_template", None) or "")
    for marker, name in TEMPLATE_FAMILIES:
        if marker in jinja:
            return name
    return None


def modelfile_text(tokenizer: Any, chat_template: str | None, base_model: str, gguf_name: str) -> str:
    """The Modelfile for ``gguf_name`` (a file beside it): FROM, TEMPLATE, stop tokens, Unsloth's parameters."""
    from unsloth.chat_templates import CHAT_TEMPLATES
    from unsloth.ollama_template_mappers import OLLAMA_TEMPLATES

    attached = getattr(tokenizer, "_ollama_modelfile", None)
    name = ollama_template_name(tokenizer, chat_template, base_model)
    if chat_template and chat_template in CHAT_TEMPLATES:
        template = CHAT_TEMPLATES[chat_template][3]
    elif attached and attached not in OLLAMA_TEMPLATES.values():
        template = attached  # a template Unsloth built for this tokenizer (construct_chat_template)
    elif name and name in OLLAMA_TEMPLATES:
        template = OLLAMA_TEMPLATES[name]
    elif name and name in CHAT_TEMPLATES:
        template = CHAT_TEMPLATES[name][3]
    else:
        raise BackendError(
            "no Ollama template matches this model's chat template; set model.chat_template to one of Unsloth's "
            "names (chatml, llama-3.1, qwen3-instruct, gemma-3, ...) and train with it, or drop save.ollama"
        )
    eos = str(getattr(tokenizer, "eos_token", None) or "")
    text = str(template).replace("{__FILE_LOCATION__}", f"./{gguf_name}").replace("{__EOS_TOKEN__}", eos)
    text = text.strip() + "\n"
    if eos and f'PARAMETER stop "{eos}"' not in text:
        text += f'PARAMETER stop "{eos}"\n'
    return text


def write_modelfile(folder: Path, tokenizer: Any, chat_template: str | None, base_model: str, gguf_name: str) -> Path:
    target = Path(folder) / MODELFILE
    target.write_text(modelfile_text(tokenizer, chat_template, base_model, gguf_name), encoding="utf-8")
    return target
