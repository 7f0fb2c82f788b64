"""A tiny random-weight Llama with a locally trained tokenizer, saved like a Hub model.

The real loading code (``FastLanguageModel.from_pretrained`` on a folder) is what we
want tests to exercise, so the tiny model is a normal Hugging Face folder: config.json,
model.safetensors and tokenizer files with a ChatML chat template. Nothing is downloaded.
Building takes a second or two; the folder is reused when it already holds the same model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

#: Bumped when the architecture or the tokenizer recipe changes, so cached folders rebuild.
RECIPE_VERSION = 1
FINGERPRINT_FILE = "tiny_model.json"

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>"]

#: ChatML, as SmolLM2 and Qwen write it; the role headers are what train_on_responses_only
#: looks for ("<|im_start|>user\n" / "<|im_start|>assistant\n").
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

#: Text the tokenizer learns its merges from when the caller gives none: enough English,
#: digits and punctuation that ordinary questions do not fall apart into single bytes.
DEFAULT_VOCAB_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France? The capital of France is Paris.",
    "Who won the game? The Philadelphia Eagles won the game against the Kansas City Chiefs.",
    "How many points did they score? They scored 40 points and the other team scored 22.",
    "Where was it held? It was held at the Caesars Superdome in New Orleans on February 9, 2025.",
    "user assistant system question answer please thank you yes no",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 plus minus times is equals",
    "SELECT name FROM table WHERE value = 'x' AND count > 3",
]

VOCAB_SIZE = 512
HIDDEN_SIZE = 64
INTERMEDIATE_SIZE = 128
LAYERS = 2
HEADS = 4
KV_HEADS = 2
MAX_POSITIONS = 2048
SEED = 1234


def build_tiny_model(path: Path, vocab_texts: list[str] | None = None) -> Path:
    """Write a tiny Llama + ChatML tokenizer to ``path`` (or reuse it) and return ``path``.

    Deterministic: the same ``vocab_texts`` give the same tokenizer and weights. The folder
    is written beside ``path`` and renamed into place, so a crashed or concurrent build never
    leaves a half-written model that a later test would load.
    """
    path = Path(path)
    texts = list(vocab_texts) if vocab_texts else list(DEFAULT_VOCAB_TEXTS)
    fingerprint = _fingerprint(texts)
    if _fingerprint_of(path) == fingerprint:
        return path

    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        _write_model(staging, texts)
        (staging / FINGERPRINT_FILE).write_text(json.dumps({"fingerprint": fingerprint, "recipe": RECIPE_VERSION}))
        if path.exists():
            shutil.rmtree(path)
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def is_tiny_model(path: str | Path) -> bool:
    """Whether ``path`` is a folder this factory wrote: random weights, whose answers are noise by design."""
    try:
        return (Path(path) / FINGERPRINT_FILE).is_file()
    except (OSError, ValueError):
        return False


def _fingerprint(texts: list[str]) -> str:
    digest = hashlib.sha256(json.dumps([RECIPE_VERSION, texts]).encode()).hexdigest()
    return digest[:16]


def _fingerprint_of(path: Path) -> str | None:
    try:
        return json.loads((path / FINGERPRINT_FILE).read_text())["fingerprint"]
    except (OSError, ValueError, KeyError):
        return None


def _import_unsloth_first() -> None:
    """The model is built to be trained with Unsloth, which must load before transformers
    (it patches it, and warns on a GPU when it comes second)."""
    import importlib.util

    if importlib.util.find_spec("unsloth") is not None:
        from unsloth_nb.engine.model import import_unsloth

        import_unsloth()


def _write_model(folder: Path, texts: list[str]) -> None:
    _import_unsloth_first()
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="<|im_end|>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=MAX_POSITIONS,
        padding_side="right",
    )
    tokenizer.chat_template = CHATML_TEMPLATE

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=INTERMEDIATE_SIZE,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(SEED)
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(generator_state)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
