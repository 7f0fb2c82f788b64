"""The bad-input corpus: every mistake a user can make before a job starts, and what the answer must say.

Each case is the flags a user would type (`unsloth-nb train ...`); the panel test types the
same values into the form. Files live in tests/data/bad/ (committed, so each problem has a
fixed ``file:line``); anything that depends on this machine (a missing path, an empty Hub
cache, a config file holding a key) is made at run time under the test's temporary folder.

Placeholders in flags, env and files: ``{bad}`` tests/data/bad, ``{model}`` a model folder
with a config.json whose context is 2,048 tokens, ``{good}`` a valid dataset, ``{tmp}`` a
scratch folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

BAD_DATA = Path(__file__).resolve().parents[1] / "data" / "bad"
MODEL_2K = BAD_DATA / "short_context_model"

#: Every case starts from a valid job (a small local model folder, a valid dataset, on this
#: machine) so that the one mistake it adds is the only thing wrong.
BASE_FLAGS = ("--model", "{model}", "--dataset", "{good}", "--max-seq-length", "512", "--placement", "local")


@dataclass(frozen=True)
class BadInput:
    """One mistake: the flags that make it, and the words the answer must contain."""

    id: str
    flags: tuple[str, ...]
    #: Fragments the message must contain: the file:line, field or variable to change, and how.
    says: tuple[str, ...]
    #: The form field the panel marks (None when the error is not about one field).
    form_field: str | None = None
    #: Environment for this case; None removes the variable.
    env: Mapping[str, str | None] = field(default_factory=dict)
    #: Files to write under {tmp} first: relative name -> text.
    files: Mapping[str, str] = field(default_factory=dict)
    #: False when the mistake cannot be made in the form (a flag typo, a --config file).
    panel: bool = True
    #: The job would rent a pod: checked against the RunPod emulator's ledger.
    runpod: bool = False
    #: Text that must never appear in the answer (a secret the input carried).
    never_says: tuple[str, ...] = ()
    #: Fragments one front end words its own way ("cli", "magic", "panel"), on top of ``says``.
    says_in: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def expected(self, front_end: str) -> tuple[str, ...]:
        return (*self.says, *self.says_in.get(front_end, ()))

    def argv(self, places: Mapping[str, str]) -> list[str]:
        return ["train", *(fill(arg, places) for arg in (*BASE_FLAGS, *self.flags))]


def fill(text: str, places: Mapping[str, str]) -> str:
    for key, value in places.items():
        text = text.replace("{" + key + "}", value)
    return text


def dataset_case(name: str, *says: str, flags: tuple[str, ...] = ()) -> BadInput:
    """A bad file. Where the answer offers a flag, the panel must offer its own field or checkbox instead."""
    stem = name.rsplit(".", 1)[0].replace("_", "-")
    words = {"--skip-invalid": "tick “Skip invalid”", "--columns": "“Columns”"}
    common = tuple(s for s in says if s not in words)
    flagged = tuple(s for s in says if s in words)
    says_in = {"cli": flagged, "magic": flagged, "panel": tuple(words[s] for s in flagged)} if flagged else {}
    return BadInput(f"data-{stem}", ("--dataset", f"{{bad}}/{name}", *flags), common, says_in=says_in)


#: Remote cases read the loopback Hub and S3 that remote_stores.py starts ({hub}, {s3} in places).
HUB_ENV: Mapping[str, str | None] = {"HF_ENDPOINT": "{hub}", "HF_HUB_OFFLINE": "0"}
S3_ENV: Mapping[str, str | None] = {
    "AWS_ENDPOINT_URL": "{s3}",
    "AWS_ACCESS_KEY_ID": "loopback-access-key",
    "AWS_SECRET_ACCESS_KEY": "loopback-secret-key",
    "AWS_DEFAULT_REGION": "us-east-1",
}

#: A value shaped like nothing real; built by joining so the source never holds a token-like string.
FAKE_CONFIG_SECRET = "-".join(("not", "a", "real", "value", "unslothnb", "test"))

CASES: tuple[BadInput, ...] = (
    # ---------------------------------------------------------------- dataset files
    # the column of the real mistake (the line used to be parsed with its newline: column 1 of the next line)
    dataset_case("malformed_json.jsonl", "malformed_json.jsonl:3", "not valid JSON", "at column 54", "--skip-invalid"),
    dataset_case("latin1.jsonl", "latin1.jsonl:2", "not UTF-8", "Save the file as UTF-8"),
    dataset_case("utf16.jsonl", "utf16.jsonl", "UTF-16", "save it as UTF-8"),
    dataset_case("empty.jsonl", "empty.jsonl is empty (0 bytes)"),
    dataset_case("blank_lines.jsonl", "blank_lines.jsonl is empty: it has no rows"),
    dataset_case("missing_column.jsonl", "missing_column.jsonl:1", "missing 'answer'", "--columns"),
    dataset_case("wrong_columns.csv", "wrong_columns.csv:2", "no known format (columns: q, a)", "--columns"),
    dataset_case("mixed_formats.jsonl", "mixed_formats.jsonl:2", "a file holds one format"),
    dataset_case("empty_messages.jsonl", "empty_messages.jsonl:1", "'messages' is an empty list"),
    dataset_case("no_assistant.jsonl", "no_assistant.jsonl:1", "no assistant turn"),
    dataset_case("empty_answer.jsonl", "empty_answer.jsonl:1", "empty assistant content"),
    dataset_case("unknown_speaker.jsonl", "unknown_speaker.jsonl:1", "unknown speaker 'bot'", "human, gpt and system"),
    dataset_case(
        "overlong_row.jsonl",
        "overlong_row.jsonl:2",
        "longer than max_seq_length=256",
        "--skip-invalid",
        flags=("--max-seq-length", "256", "--long-rows", "error"),  # the default truncates (tests/unit/test_data.py)
    ),
    dataset_case("array_in_jsonl.jsonl", "array_in_jsonl.jsonl:1", "expected an object with named fields"),
    dataset_case("not_rows.json", "not_rows.json", "expected a JSON array of rows"),
    dataset_case("not_parquet.parquet", "not_parquet.parquet", "not a readable Parquet file"),
    dataset_case("notes.txt", "notes.txt: unknown file type '.txt'", "Use a .jsonl"),
    # ---------------------------------------------------------------- remote sources (bad_inputs/remote_stores.py)
    BadInput(
        "hub-dataset-does-not-exist",
        ("--dataset", "nobody/no-such-dataset"),
        ("Hub dataset nobody/no-such-dataset not found", "HF_TOKEN"),
        env=HUB_ENV,
    ),
    BadInput(
        "hub-dataset-private-without-token",
        ("--dataset", "acme/private-qa"),
        ("Hub dataset acme/private-qa not found (or private)", "set HF_TOKEN"),
        env={**HUB_ENV, "HF_TOKEN": None, "HUGGING_FACE_HUB_TOKEN": None},
    ),
    BadInput(
        "hub-dataset-bad-split",
        ("--dataset", "acme/qa", "--split", "validaton"),
        ("hf://datasets/acme/qa has no split 'validaton'; its splits are: test, train",),
        env=HUB_ENV,
        panel=False,  # the form has no Split field
        says_in={"cli": ("--split",), "magic": ("--split",)},
    ),
    BadInput(
        "s3-object-broken-row-12345",
        ("--dataset", "s3://acme-data/broken.jsonl"),
        ("s3://acme-data/broken.jsonl:12345: not valid JSON",),
        env=S3_ENV,
        says_in={"cli": ("--skip-invalid",), "magic": ("--skip-invalid",), "panel": ("tick “Skip invalid”",)},
    ),
    BadInput(
        "s3-bucket-does-not-exist",
        ("--dataset", "s3://no-such-bucket/train.jsonl"),
        ("s3://no-such-bucket/train.jsonl", "the bucket 'no-such-bucket' does not exist"),
        env=S3_ENV,
    ),
    BadInput(
        "s3-without-credentials",
        ("--dataset", "s3://acme-data/broken.jsonl"),
        ("no S3 credentials found", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        env={**S3_ENV, "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None},
    ),
    BadInput(
        "data-path-does-not-exist",
        ("--dataset", "{tmp}/no/such/train.jsonl"),
        ("dataset not found", "no/such/train.jsonl", "check the spelling"),
    ),
    # ---------------------------------------------------------------- hyperparameters
    BadInput("negative-lr", ("--lr", "-1e-4"), ("train.lr", "must be greater than 0"), form_field="train.lr"),
    BadInput("lora-r-zero", ("--lora-r", "0"), ("lora.r", "must be at least 1"), form_field="lora.r"),
    BadInput("batch-size-zero", ("--batch-size", "0"), ("train.batch_size", "must be at least 1"), form_field="train.batch_size"),
    BadInput("epochs-zero", ("--epochs", "0"), ("train.epochs", "must be greater than 0"), form_field="train.epochs"),
    BadInput("lr-not-a-number", ("--lr", "fast"), ("train.lr", "expected a number"), form_field="train.lr"),
    BadInput("dropout-too-high", ("--lora-dropout", "1.5"), ("lora.dropout", "must be at most 0.9"), form_field="lora.dropout"),
    BadInput(
        "eval-split-too-big",
        ("--eval-split", "0.9"),
        ("dataset.eval_split", "must be at most 0.5"),
        form_field="dataset.eval_split",
    ),
    BadInput(
        "seq-length-too-large-for-the-model",
        ("--max-seq-length", "4096"),
        ("train.max_seq_length", "max_position_embeddings is 2,048", "2,048 or less"),
        form_field="train.max_seq_length",
    ),
    BadInput(
        "seq-length-too-small",
        ("--max-seq-length", "8"),
        ("train.max_seq_length", "at least 16"),
        form_field="train.max_seq_length",
    ),
    BadInput(
        "warmup-longer-than-training",
        ("--max-steps", "5", "--warmup-steps", "50"),
        ("train.warmup_steps", "exceed max_steps=5"),
        form_field="train.warmup_steps",
    ),
    BadInput("hub-id-malformed", ("--hub-id", "not a repo"), ("hub.repo_id", "owner/name"), form_field="hub.repo_id"),
    BadInput(
        "unknown-gpu-type",
        ("--gpus", "NVIDIA RTX 9999"),
        ("runpod.gpus[0]", "unknown GPU type", "Did you mean"),
    ),
    # ---------------------------------------------------------------- models
    BadInput(
        "model-path-does-not-exist",
        ("--model", "{tmp}/models/Llama-3.2-1B-finetuned"),
        ("model.name", "no model folder at", "config.json"),
        form_field="model.name",
    ),
    BadInput(
        "model-is-a-file",
        ("--model", "{model}/config.json"),
        ("model.name", "is a file", "folder"),
        form_field="model.name",
    ),
    BadInput(
        "hub-model-not-cached-offline",
        ("--model", "someone-unknown/NoSuchModel-135M-Instruct"),
        ("model.name", "not in the Hugging Face cache", "HF_HUB_OFFLINE=1", "hf download"),
        form_field="model.name",
        env={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": "{tmp}/empty-hub-cache"},
    ),
    BadInput(
        "hub-model-without-a-size",
        ("--model", "someone-unknown/mystery-model"),
        ("could not be determined", "model.name", "config.json"),
        # online (where this is the whole story); offline, the answer is that the model is not cached
        env={"HF_HUB_CACHE": "{tmp}/empty-hub-cache", "HF_HUB_OFFLINE": None, "TRANSFORMERS_OFFLINE": None},
    ),
    # ---------------------------------------------------------------- keys
    BadInput(
        "runpod-without-a-key",
        ("--placement", "runpod"),
        ("RUNPOD_API_KEY is not set", "export RUNPOD_API_KEY="),
        env={"RUNPOD_API_KEY": None},
        runpod=True,
    ),
    BadInput(
        "hub-push-without-hf-token",
        ("--hub-id", "someone/support-lora"),
        ("HF_TOKEN is not set", "someone/support-lora", "export HF_TOKEN="),
        env={"HF_TOKEN": None, "HUGGING_FACE_HUB_TOKEN": None},
    ),
    # ---------------------------------------------------------------- the judge (a judge flag turns it on)
    BadInput(
        "judge-provider-unknown",
        ("--judge-provider", "gemini"),
        ("judge.provider", "not one of", "openai-compatible", "anthropic"),
        panel=False,
    ),
    BadInput(
        "judge-compatible-without-a-url",
        ("--judge-provider", "openai-compatible"),
        ("judge.base_url", "http://localhost:8000/v1"),
        panel=False,
    ),
    BadInput(
        "judge-without-an-openai-key",
        ("--judge-eval", "{tmp}/questions.jsonl"),
        ("OPENAI_API_KEY is not set", "export OPENAI_API_KEY="),
        env={"OPENAI_API_KEY": None},
        files={"questions.jsonl": '{"question": "What colour is the sky on Mars?", "answer": "Butterscotch by day."}\n'},
        panel=False,
    ),
    BadInput("judge-holdout-too-big", ("--judge-holdout", "0.7"), ("judge.holdout", "at most 0.5"), panel=False),
    BadInput(
        "judge-price-not-a-price",
        ("--judge-prices", "gpt-5-mini=cheap"),
        ("judge.prices.gpt-5-mini", "not a price", "0.25/2.0"),
        panel=False,
    ),
    BadInput(
        "judge-rubric-without-placeholders",
        ("--judge-rubric", "{tmp}/rubric.md"),
        ("judge.rubric", "rubric.md", "{answer_a}", "{answer_b}"),
        files={"rubric.md": "Which answer is better?\n{question}\n"},
        panel=False,
    ),
    BadInput(
        "judge-eval-file-missing",
        ("--judge-eval", "{tmp}/no/such/questions.jsonl"),
        ("no/such/questions.jsonl", "not found"),
        panel=False,
    ),
    BadInput(
        "judge-key-in-a-config-file",
        ("--config", "{tmp}/judge-key.yaml"),
        ("judge.api_key", "secrets are never part of a config", "OPENAI_API_KEY"),
        files={"judge-key.yaml": f"judge:\n  model: gpt-5-mini\n  api_key: {FAKE_CONFIG_SECRET}\n"},
        panel=False,
        never_says=(FAKE_CONFIG_SECRET,),
    ),
    # ---------------------------------------------------------------- the teacher (a teacher flag turns it on)
    BadInput(
        "teacher-operation-unknown",
        ("--teacher-ops", "improve,summarise"),
        ("teacher.operations", "'summarise'", "improve, paraphrase"),
        panel=False,
    ),
    BadInput(
        "teacher-batch-without-anthropic",
        ("--teacher-provider", "openai", "--teacher-batch", "on"),
        ("teacher.batch", "Message Batches", "anthropic"),
        panel=False,
    ),
    BadInput(
        "teacher-without-an-anthropic-key",
        ("--teacher",),
        ("ANTHROPIC_API_KEY is not set", "export ANTHROPIC_API_KEY="),
        env={"ANTHROPIC_API_KEY": None},
        panel=False,
    ),
    BadInput(
        "teacher-prompt-without-placeholders",
        ("--teacher-prompts", "{tmp}"),
        ("teacher.prompts", "improve", "{answer}"),
        files={"improve.md": "Make this answer better: {question}\n"},
        panel=False,
    ),
    BadInput(
        "teacher-key-in-a-config-file",
        ("--config", "{tmp}/teacher-key.yaml"),
        ("teacher.api_key", "secrets are never part of a config", "ANTHROPIC_API_KEY"),
        files={"teacher-key.yaml": f"teacher:\n  model: claude-sonnet-4-5\n  api_key: {FAKE_CONFIG_SECRET}\n"},
        panel=False,
        never_says=(FAKE_CONFIG_SECRET,),
    ),
    # ---------------------------------------------------------------- terminal only
    BadInput(
        "unknown-flag",
        ("--lora-rank", "8"),
        ("--lora-rank", "did you mean --lora-r?"),
        panel=False,
        says_in={"cli": ("unsloth-nb train --help",), "magic": ("%unsloth_train?",)},
    ),
    BadInput(
        "unknown-flag-close-to-a-real-one",
        ("--epoch", "2"),
        ("unknown flag --epoch", "did you mean --epochs?"),
        panel=False,
        says_in={"magic": ("see %unsloth_train? for the list of flags",)},
    ),
    # an Unsloth notebook's own name whose value unsloth-nb fixes, pasted with another value
    BadInput(
        "unsloth-fixed-value-mismatch",
        ("--bias", "all"),
        ("bias", "'all' is not what unsloth-nb uses", "bias='none' (Unsloth's optimised path)", "set it to 'none'"),
        panel=False,
    ),
    # ---------------------------------------------------------------- several at once
    BadInput(
        "three-mistakes-in-one-pass",
        ("--model", "{tmp}/models/no-such-model", "--dataset", "{tmp}/missing.jsonl", "--lora-r", "0"),
        ("3 problems", "lora.r", "must be at least 1", "dataset not found", "missing.jsonl", "no model folder at"),
        form_field="lora.r",
    ),
    BadInput(
        "both-keys-missing",
        ("--placement", "runpod", "--hub-id", "someone/support-lora"),
        ("RUNPOD_API_KEY", "HF_TOKEN", "someone/support-lora", "export HF_TOKEN=... RUNPOD_API_KEY=..."),
        env={"RUNPOD_API_KEY": None, "HF_TOKEN": None, "HUGGING_FACE_HUB_TOKEN": None},
        runpod=True,
        never_says=("when prompted",),
    ),
    # ---------------------------------------------------------------- found at load time unless checked first
    BadInput(
        "chat-template-unsloth-does-not-know",
        ("--chat-template", "llama3.1"),
        ("model.chat_template", "no chat template 'llama3.1'", "did you mean 'llama-3.1'?"),
        form_field="model.chat_template",
    ),
    BadInput(
        "target-module-misspelled",
        ("--target-modules", "q_proj,k_prj,v_proj"),
        ("lora.target_modules", "has no module 'k_prj'", "did you mean 'k_proj'?"),
        form_field="lora.target_modules",
    ),
    BadInput(
        "target-modules-separated-by-spaces",
        ("--target-modules", "q_proj k_proj"),
        ("lora.target_modules", "'q_proj k_proj' is not a module name", "separated by commas"),
        form_field="lora.target_modules",
    ),
    BadInput(
        "secret-in-a-config-file",
        ("--config", "{tmp}/with-key.yaml"),
        ("hub.token", "secrets are never part of a config", "HF_TOKEN"),
        files={"with-key.yaml": f"hub:\n  repo_id: someone/support-lora\n  token: {FAKE_CONFIG_SECRET}\n"},
        panel=False,
        never_says=(FAKE_CONFIG_SECRET,),
    ),
    BadInput(
        "config-file-not-yaml",
        ("--config", "{tmp}/broken.yaml"),
        ("broken.yaml:3", "not valid YAML"),
        files={"broken.yaml": "train:\n  lr: [2e-4\n  epochs: 1\n"},
        panel=False,
    ),
    BadInput(
        "notebook-cell-not-python",
        ("--from", "{tmp}/broken.ipynb"),
        ("cell 2, line 2", "not Python that can be read"),
        files={
            "broken.ipynb": '{"cells": [{"cell_type": "markdown", "source": "# hi"}, '
            '{"cell_type": "code", "source": "!pip install unsloth\\nmodel = FastLanguageModel.from_pretrained(\\n"}]}'
        },
        panel=False,
    ),
    BadInput(
        "greedy-with-a-sampling-filter",
        ("--temperature", "0", "--top-k", "20"),
        ("generate.temperature", "greedily", "top_k"),
        panel=False,
    ),
)
