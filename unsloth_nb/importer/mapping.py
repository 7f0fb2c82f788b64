"""From the calls of an Unsloth notebook to our config fields, with a note for everything not mapped.

Unsloth's and TRL's keyword names are read through :mod:`unsloth_nb.config_aliases` (the same table that lets a
user paste them into a cell body), so the importer and the config agree on what each name means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from unsloth_nb import config_aliases
from unsloth_nb.config.schema import SECRET_KEY_PATTERN
from unsloth_nb.config_aliases import ALIASES, FIXED, TEXT_FIELD
from unsloth_nb.importer.scan import Call, Scan, Value


@dataclass(frozen=True)
class Note:
    """Something said about one place in the notebook: where (cell and line) and what."""

    where: str
    text: str

    def __str__(self) -> str:
        return f"{self.where}: {self.text}"


_FROM_PRETRAINED = {"model_name", "max_seq_length", "dtype", "load_in_4bit", "revision", "trust_remote_code"}
_PEFT = {"r", "lora_alpha", "lora_dropout", "target_modules", "use_rslora", "use_gradient_checkpointing", "random_state"}
_TRAINER = {name for name, path in ALIASES.items() if path.startswith(("train.", "save."))} - {"train_on_responses_only"}
_GENERATE = {name for name, path in ALIASES.items() if path.startswith("generate.")} - {"enable_thinking"}
_TRAINER_CALLS = {"SFTConfig", "TrainingArguments", "UnslothTrainingArguments", "SFTTrainer", "UnslothTrainer", "Trainer"}
#: Arguments that wire objects together (the model, the data, a streamer) rather than set a knob.
_WIRING = {
    "from_pretrained": set(),
    "get_peft_model": set(),
    "trainer": {"model", "tokenizer", "processing_class", "train_dataset", "args"},
    "generate": {"input_ids", "inputs", "attention_mask", "streamer", "use_cache", "pad_token_id", "eos_token_id"},
}
#: Arguments we have no field for, with the reason a user should read.
_WHY_NOT: dict[str, str] = {
    "fp16": "unsloth-nb picks the precision itself (model.dtype: auto: bfloat16 where supported, else float16)",
    "bf16": "unsloth-nb picks the precision itself (model.dtype: auto: bfloat16 where supported, else float16)",
    "map_eos_token": "unsloth-nb keeps the chat template's own end-of-turn token; there is no field for remapping it",
    "padding_free": "no unsloth-nb field; padding-free batching is left to TRL's default",
    "dataset_num_proc": "no unsloth-nb field; rows are prepared in this process",
}
_TARGETS = {
    "finetune_attention_modules": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "finetune_mlp_modules": ("gate_proj", "up_proj", "down_proj"),
}
_LIST_FIELDS = {"save.gguf", "hub.push"}
#: ``train``, ``train[:1000]``, ``train[10%:]``: the split name, and N of a leading ``[:N]`` slice.
_SPLIT_SLICE = re.compile(r"^(\w+)\[(?::(\d+)|[^\]]*)\]$")


@dataclass
class Mapped:
    """What the importer made of a notebook."""

    config: dict[str, Any] = field(default_factory=dict)
    unmapped: list[Note] = field(default_factory=list)
    handled: list[Note] = field(default_factory=list)
    offered: list[Note] = field(default_factory=list)
    origin: dict[str, str] = field(default_factory=dict)


def map_scan(scan: Scan) -> Mapped:
    mapper = _Mapper()
    for call in scan.calls:
        mapper.call(call)
    for attribute in scan.attributes:
        if attribute.name == "_ollama_modelfile":
            if attribute.active:
                mapper.put("save.ollama", True, attribute.where)
            else:
                mapper.offer(attribute, "save.ollama: true")
    mapper.finish(scan)
    return mapper.out


class _Mapper:
    def __init__(self) -> None:
        self.out = Mapped()
        self.seen: set[str] = set()  # kinds of call met (active), for the notebook-wide conclusions
        self.generate_from: str | None = None
        self.template_from: str | None = None
        self.datasets: list[tuple[str, dict[str, Any]]] = []  # (where, source) per load_dataset

    # ------------------------------------------------------------------ writing fields
    def put(self, path: str, value: Any, where: str) -> None:
        """Write ``value`` at ``path``; a list field gathers every call's items, a second scalar value is reported."""
        root = self.out.config
        section, leaf = path.split(".", 1) if "." in path else ("", path)
        node = root.setdefault(section, {}) if section else root
        if path in _LIST_FIELDS:
            items = node.setdefault(leaf, [])
            for item in value if isinstance(value, list) else [value]:
                if item not in items:
                    items.append(item)
            self.out.origin.setdefault(path, where)
            return
        if leaf in node and node[leaf] != value:
            self.unmapped(
                where, f"{path} = {value!r} not kept: {self.out.origin.get(path, 'an earlier call')} set {node[leaf]!r}"
            )
            return
        node[leaf] = value
        self.out.origin.setdefault(path, where)

    def unmapped(self, where: str, text: str) -> None:
        self.out.unmapped.append(Note(where, text))

    def handled(self, where: str, text: str) -> None:
        self.out.handled.append(Note(where, text))

    def offer(self, call: Call, fields: str) -> None:
        self.out.offered.append(
            Note(call.where, f"{call.name}(...) is inside `if False:`, so the notebook does not run it; to do it here: {fields}")
        )

    def keywords(self, call: Call, allowed: set[str], wiring: set[str]) -> None:
        """Each keyword of ``call``: our field, a value we fix, wiring, or a note saying why it is not mapped."""
        for name, value in call.kwargs.items():
            if name in wiring:
                continue
            self.keyword(call.where, name, value, allowed)

    def keyword(self, where: str, name: str, value: Value, allowed: set[str]) -> None:
        if name == "token" or SECRET_KEY_PATTERN.search(name):  # its value is never copied, not even into a note
            self.handled(where, f"{name}: secrets never go in a config; unsloth-nb reads HF_TOKEN from the environment")
            return
        if name in FIXED:
            if value.known and FIXED[name].accepts(value.value):
                self.handled(where, f"{name} = {value.text}: what unsloth-nb always uses")
            else:
                self.unmapped(where, f"{name} = {value.text}: {FIXED[name].reason}")
            return
        if name == TEXT_FIELD:
            if value.known and value.value == "text":
                self.handled(where, f"{name} = 'text': unsloth-nb formats the rows itself (dataset.format: auto)")
            elif value.known:
                self.put("dataset.columns", {"text": value.value}, where)
            else:
                self.unmapped(where, f"{name} = {value.text}: computed when the notebook runs; set dataset.columns by hand")
            return
        path = ALIASES.get(name)
        if path is None or name not in allowed:
            self.unmapped(where, f"{name} = {value.text}: {_WHY_NOT.get(name, 'no unsloth-nb field for it')}")
            return
        if not value.known:
            self.unmapped(where, f"{name} = {value.text}: computed when the notebook runs; set {path} by hand")
            return
        self.put(path, config_aliases._normalise_value(path, value.value), where)

    # ------------------------------------------------------------------ calls
    def call(self, call: Call) -> None:
        handler = getattr(self, f"_{call.name}", None)
        if call.name in _TRAINER_CALLS:
            handler = self._trainer
        if handler is not None:
            handler(call)

    def _from_pretrained(self, call: Call) -> None:
        if not (call.receiver or "").startswith("Fast") or not call.active:
            return  # AutoTokenizer / AutoPeftModel reloads, and reloads of the saved adapter under `if False:`
        if "from_pretrained" in self.seen:
            self.unmapped(call.where, "a second FastLanguageModel.from_pretrained: only the first model is trained")
            return
        self.seen.add("from_pretrained")
        name = call.kwarg("model_name", 0)
        if name is not None and "model_name" not in call.kwargs:
            self.keyword(call.where, "model_name", name, _FROM_PRETRAINED)
        self.keywords(call, _FROM_PRETRAINED, _WIRING["from_pretrained"])

    def _get_peft_model(self, call: Call) -> None:
        if not call.active:
            return
        self.seen.add("get_peft_model")
        flags = {name: value for name, value in call.kwargs.items() if name.startswith("finetune_")}
        self.keywords(call, _PEFT, _WIRING["get_peft_model"] | set(flags))
        if not flags:
            return
        values = {name: value.value for name, value in flags.items() if value.known}
        if values.get("finetune_vision_layers"):
            self.unmapped(call.where, "finetune_vision_layers = True: unsloth-nb trains language layers only")
        elif "finetune_vision_layers" in values:
            self.handled(call.where, "finetune_vision_layers = False: unsloth-nb trains language layers only")
        if values.get("finetune_language_layers") is False:
            self.unmapped(call.where, "finetune_language_layers = False: unsloth-nb always trains the language layers")
        chosen = [module for name, modules in _TARGETS.items() if values.get(name, True) for module in modules]
        if "target_modules" in call.kwargs:
            return
        if len(chosen) == 7:
            self.handled(call.where, "finetune_attention_modules and finetune_mlp_modules: unsloth-nb's default target_modules")
        elif chosen:
            self.put("lora.target_modules", chosen, call.where)

    def _get_chat_template(self, call: Call) -> None:
        if not call.active:
            return
        template = call.kwarg("chat_template", 1)
        if template is not None:
            self.chat_template(call.where, template)
        for name, value in call.kwargs.items():
            if name == "mapping":
                self.handled(call.where, "mapping: ShareGPT rows (from/value, human/gpt) are read as they are")
            elif name not in ("chat_template", "tokenizer"):
                self.unmapped(call.where, f"{name} = {value.text}: {_WHY_NOT.get(name, 'no unsloth-nb field for it')}")

    def chat_template(self, where: str, template: Value) -> None:
        if template.known and isinstance(template.value, str) and "\n" not in template.value and "{" not in template.value:
            self.put("model.chat_template", template.value, where)
            self.template_from = self.template_from or where
            return
        text = template.value[0] if template.known and isinstance(template.value, list) and template.value else template.value
        if isinstance(text, str) and _alpaca_like(text):
            self.put("model.chat_template", "alpaca", where)
            self.template_from = self.template_from or where
            exact = "Below are some instructions" in text
            if exact:
                self.handled(where, "the custom template text is Unsloth's alpaca template: model.chat_template: alpaca")
            else:
                self.unmapped(
                    where,
                    "a custom alpaca-style template text: written as model.chat_template: alpaca "
                    "(same ### Instruction / ### Response layout; its wording differs)",
                )
            return
        self.unmapped(
            where,
            f"chat_template = {template.text[:60]}: a custom template text; model.chat_template takes "
            "one of Unsloth's template names (chatml, llama-3.1, qwen3, ...)",
        )

    def _apply_chat_template(self, call: Call) -> None:
        if not call.active:
            return
        if call.receiver is None or call.receiver == "unsloth":  # unsloth.apply_chat_template(dataset, chat_template=...)
            template = call.kwarg("chat_template")
            if template is not None:
                self.chat_template(call.where, template)
            return
        thinking = call.kwargs.get("enable_thinking")
        if thinking is not None:
            self.generation_setting(call.where, "enable_thinking", thinking)

    def _standardize_sharegpt(self, call: Call) -> None:
        if call.active:
            self.handled(
                call.where, f"{call.name}: unsloth-nb reads ShareGPT and messages rows as they are (dataset.format: auto)"
            )

    _standardize_data_formats = _standardize_sharegpt

    def _to_sharegpt(self, call: Call) -> None:
        if call.active:
            args = ", ".join(name for name in call.kwargs if name != "output_column_name")
            self.unmapped(
                call.where,
                f"to_sharegpt({args}): no unsloth-nb field; instruction/input/output rows are read "
                "as Alpaca (the input joined to the instruction), one turn per row",
            )

    def _load_dataset(self, call: Call) -> None:
        if not call.active:
            return
        path, split = call.kwarg("path", 0), call.kwarg("split")
        files = call.kwarg("data_files")
        source: dict[str, Any] = {}
        if path is not None and path.known and path.value in ("json", "csv", "parquet", "text") and files is not None:
            if not files.known or not isinstance(files.value, str):
                self.unmapped(call.where, f"data_files = {files.text}: give one file as dataset.path")
                return
            source = {"path": files.value}
        elif path is not None and path.known and isinstance(path.value, str):
            source = {"path": path.value}  # a Hub dataset id: dataset.path reads org/name from the Hub
            for name, leaf, position in (("name", "config_name", 1), ("revision", "revision", None)):
                value = call.kwarg(name, position)
                if value is not None and value.known and value.value is not None:
                    source[leaf] = value.value
                elif value is not None:
                    self.unmapped(call.where, f"{name} = {value.text}: computed when the notebook runs; set dataset.{leaf}")
        else:
            self.unmapped(call.where, f"load_dataset({path.text if path else ''}): the dataset is computed; set dataset.path")
            return
        if split is not None and split.known:
            self.split(call.where, str(split.value), source)
        self.datasets.append((call.where, source))

    def split(self, where: str, text: str, source: dict[str, Any]) -> None:
        """``train`` as it is; ``train[:1000]`` as split + max_rows; any other slice is reported, the split kept."""
        match = _SPLIT_SLICE.match(text.replace(" ", ""))
        if match is None:
            source["split"] = text
            return
        source["split"] = match.group(1)
        if match.group(2):
            source["max_rows"] = int(match.group(2))
        else:
            self.unmapped(where, f"split = {text!r}: a slice other than [:N] has no field; the whole split is read")

    def _train_on_responses_only(self, call: Call) -> None:
        if not call.active:
            return
        self.seen.add("train_on_responses_only")
        self.put("train.train_on_responses_only", True, call.where)
        for name in ("instruction_part", "response_part"):
            if name in call.kwargs:
                self.handled(call.where, f"{name}: unsloth-nb finds the markers in the chat template itself")

    def _trainer(self, call: Call) -> None:
        if not call.active:
            return
        self.seen.add("trainer")
        wiring = set(_WIRING["trainer"])
        eval_dataset = call.kwargs.get("eval_dataset")
        if eval_dataset is not None:
            wiring.add("eval_dataset")
            if not (eval_dataset.known and eval_dataset.value is None):
                self.unmapped(call.where, f"eval_dataset = {eval_dataset.text}: give dataset.eval_path or dataset.eval_split")
        if "data_collator" in call.kwargs:
            wiring.add("data_collator")
            self.handled(call.where, "data_collator: unsloth-nb picks the collator itself (it pads each batch)")
        self.keywords(call, _TRAINER, wiring)

    def _generate(self, call: Call) -> None:
        if not call.active or call.receiver not in ("model", "trainer.model", "self.model"):
            return
        if self.generate_from is None:
            self.generate_from = call.where
            if "temperature" not in call.kwargs and not call.kwargs.get("do_sample", Value(False, True, "")).value:
                self.put("generate.temperature", None, call.where)  # no sampling arguments: the model's own defaults
                self.put("generate.min_p", None, call.where)
        for name, value in call.kwargs.items():
            if name in _WIRING["generate"] or name == "do_sample":
                continue
            if name in _GENERATE:
                self.generation_setting(call.where, name, value)
            else:
                self.unmapped(call.where, f"{name} = {value.text}: {_WHY_NOT.get(name, 'no generate: field for it')}")

    def generation_setting(self, where: str, name: str, value: Value) -> None:
        """The first generate call's settings become the generate: section; a later different one is reported."""
        path = ALIASES[name]
        section = self.out.config.get("generate", {})
        leaf = path.split(".")[1]
        if not value.known:
            self.unmapped(where, f"{name} = {value.text}: computed when the notebook runs; set {path} by hand")
        elif leaf in section and section[leaf] != value.value:
            self.unmapped(
                where,
                f"{name} = {value.text} not kept: {self.out.origin.get(path)} set {section[leaf]!r} "
                "(generate: holds one setting)",
            )
        else:
            self.put(path, value.value, where)

    def _save_pretrained(self, call: Call) -> None:
        if call.receiver != "model" or not call.active:
            return
        folder = call.kwarg("save_directory", 0)
        self.handled(
            call.where,
            f"save_pretrained({folder.text if folder else ''}): the adapter is saved in the job's "
            "folder (or save.output_dir) as adapter/",
        )

    def _push_to_hub(self, call: Call) -> None:
        if call.receiver != "model":
            return
        repo = call.kwarg("repo_id", 0)
        if not call.active:
            self.offer(call, f"hub.repo_id: {repo.value if repo and repo.known else '...'}, hub.push: [adapter]")
            return
        self.hub(call, repo)
        self.put("hub.push", ["adapter"], call.where)

    def _save_pretrained_merged(self, call: Call) -> None:
        method = self.merge_method(call)
        if method is None:
            return
        if method == "lora":  # Unsloth saves the adapter alone: what save.adapter (on by default) does
            if call.active:
                self.handled(call.where, "save_method = 'lora': the adapter is saved as adapter/ (save.adapter: true)")
            else:
                self.offer(call, "save.adapter: true (the default)")
            return
        if not call.active:
            self.offer(call, f"save.{method}: true")
            return
        self.put(f"save.{method}", True, call.where)

    def _push_to_hub_merged(self, call: Call) -> None:
        method = self.merge_method(call)
        if method is None:
            return
        target = "adapter" if method == "lora" else method
        repo = call.kwarg("repo_id", 0)
        if not call.active:
            saved = "" if method == "lora" else f"save.{method}: true, "
            self.offer(call, f"{saved}hub.repo_id: {repo.value if repo and repo.known else '...'}, hub.push: [{target}]")
            return
        if method != "lora":
            self.put(f"save.{method}", True, call.where)
        self.hub(call, repo)
        self.put("hub.push", [target], call.where)

    def _save_pretrained_gguf(self, call: Call) -> None:
        methods = self.quantizations(call)
        if not methods:
            return
        if not call.active:
            self.offer(call, f"save.gguf: [{', '.join(methods)}]")
            return
        self.put("save.gguf", methods, call.where)

    def _push_to_hub_gguf(self, call: Call) -> None:
        methods = self.quantizations(call)
        if not methods:
            return
        repo = call.kwarg("repo_id", 0)
        if not call.active:
            self.offer(
                call,
                f"save.gguf: [{', '.join(methods)}], hub.repo_id: {repo.value if repo and repo.known else '...'}, hub.push: [gguf]",
            )
            return
        self.put("save.gguf", methods, call.where)
        self.hub(call, repo)
        self.put("hub.push", ["gguf"], call.where)

    def merge_method(self, call: Call) -> str | None:
        """Unsloth's save_method (merged_16bit when not given), or None with a note when we have no such target."""
        value = call.kwarg("save_method", 2)
        if value is None:
            return "merged_16bit"
        if value.known and value.value in ("merged_16bit", "merged_4bit", "lora"):
            return str(value.value)
        if call.active:
            given = repr(value.value) if value.known else value.text
            self.unmapped(call.where, f"save_method = {given}: unsloth-nb saves lora (the adapter), merged_16bit or merged_4bit")
        return None

    def quantizations(self, call: Call) -> list[str]:
        """Unsloth's quantization_method, one name or a list (fast_quantized, i.e. q8_0, when not given).

        A type we do not write is reported and left out, so that the imported config still plans.
        """
        from unsloth_nb.config.export import GGUF_TYPE_ALIASES, GGUF_TYPES

        value = call.kwarg("quantization_method", 2)
        if value is None:
            return ["q8_0"]
        items = value.value if value.known and isinstance(value.value, list) else [value.value]
        if not value.known or not all(isinstance(item, str) for item in items):
            if call.active:
                self.unmapped(call.where, f"quantization_method = {value.text}: computed when the notebook runs; set save.gguf")
            return []
        names = [item.strip().lower() for item in items]
        unknown = [n for n in names if GGUF_TYPE_ALIASES.get(n, n) not in GGUF_TYPES]
        if unknown and call.active:
            self.unmapped(
                call.where,
                f"quantization_method {', '.join(map(repr, unknown))}: not a GGUF type unsloth-nb writes "
                f"(choose from {', '.join(GGUF_TYPES)})",
            )
        return [n for n in names if n not in unknown]

    def hub(self, call: Call, repo: Value | None) -> None:
        if repo is None or not repo.known:
            self.unmapped(call.where, f"the Hub repository {repo.text if repo else ''} is computed; set hub.repo_id")
            return
        self.put("hub.repo_id", repo.value, call.where)
        if "token" in call.kwargs:
            self.handled(call.where, "token: unsloth-nb reads HF_TOKEN from the environment")

    # ------------------------------------------------------------------ conclusions
    def finish(self, scan: Scan) -> None:
        self.dataset()
        save = self.out.config.get("save", {})
        if save.get("ollama") and not save.get("gguf"):  # a Modelfile points at a GGUF: without one it cannot be run
            del save["ollama"]
            if not save:
                del self.out.config["save"]
            self.unmapped(
                self.out.origin.get("save.ollama", "notebook"),
                "the Ollama Modelfile needs a GGUF file, and no GGUF export runs: set save.gguf (e.g. [q8_0]) "
                "and save.ollama: true",
            )
        if "trainer" in self.seen and "train_on_responses_only" not in self.seen:
            self.put("train.train_on_responses_only", False, "notebook")  # it trains on whole rows, so must we
            self.handled(
                "notebook", "no train_on_responses_only call: the loss covers whole rows (train.train_on_responses_only: false)"
            )
        if self.template_from is None:
            for where, text in scan.strings:
                if _alpaca_like(text):
                    self.chat_template(where, Value(text, True, text[:40]))
                    break

    def dataset(self) -> None:
        """One load_dataset: dataset.path and its fields. Several: dataset.mix, each source weighted 1 until edited."""
        datasets = self.datasets
        if not datasets:
            return
        where, source = datasets[0]
        if len(datasets) == 1:
            for leaf, value in source.items():
                self.put(f"dataset.{leaf}", value, where)
            return
        self.put("dataset.mix", [f"{source['path']}=1" for _, source in datasets], where)
        self.unmapped(
            where,
            f"{len(datasets)} datasets are mixed in code: each is written with weight 1 in dataset.mix; "
            "change the weights to the notebook's proportions (e.g. reasoning=75%, chat=25%)",
        )
        first = source
        for leaf in ("split", "config_name", "revision"):
            values = {str(s.get(leaf, "train" if leaf == "split" else None)) for _, s in datasets}
            if len(values) > 1:
                given = ", ".join(f"{s['path']}: {s.get(leaf, '-')}" for _, s in datasets)
                self.unmapped(
                    where, f"{leaf} differs between the mixed datasets ({given}): dataset.{leaf} is one for the whole mix"
                )
            elif leaf in first:
                self.put(f"dataset.{leaf}", first[leaf], where)
        if any("max_rows" in s for _, s in datasets):
            self.unmapped(where, "a [:N] split slice of a mixed dataset: dataset.max_rows limits the mixed rows instead")


def _alpaca_like(text: str) -> bool:
    return "### Instruction" in text and "### Response" in text
