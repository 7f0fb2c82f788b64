"""Try it: ask the trained model a question from the job view, with the base model's answer beside it.

:class:`Asker` is the model side (the model trained in this kernel, or the saved adapter loaded once);
:class:`TryIt` is the widget side, whose input, button and answer widgets are made only when it is
first needed (a job that ended with a model), so a running job's view opens none of them.
"""

from __future__ import annotations

import contextvars
import html
import threading
from collections.abc import Callable
from typing import Any

from unsloth_nb.jobrun.job import Job
from unsloth_nb.testing.tiny_model import is_tiny_model
from unsloth_nb.ui.view_html import answers_html, message_html

#: Said above the answers of unsloth_nb's own test model, so its noise is not read as a broken fine-tune.
TEST_MODEL_NOTE = (
    "This is unsloth_nb's tiny random-weight test model (unsloth_nb.testing.tiny_model): it answers with noise "
    "or nothing whatever it was trained on. Train a real model (SmolLM2, Llama, Qwen …) for real answers."
)


class Asker:
    """Answers from the fine-tuned model and, with its adapter switched off, from the base model."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.answers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None
        #: Said beside the answers: generate.enable_thinking set for a template without the switch, or the
        #: model is the random-weight test model.
        self.note: str | None = None

    def available(self, state: str) -> bool:
        """A model to ask: the one trained in this kernel, or a saved adapter on disk."""
        if state not in ("succeeded", "cancelled"):
            return False
        return self.job.model is not None or (self.job.adapter_path is not None and self.job.adapter_path.exists())

    def ask(self, question: str, *, max_new_tokens: int | None = None) -> dict[str, str]:
        """Sampled as the job's ``generate:`` section says, so Try it answers as the user's own notebook cell would."""
        import dataclasses

        from unsloth_nb.engine.generation import thinking_note
        from unsloth_nb.engine.save import generate

        settings = self.job.config.generate
        if max_new_tokens is not None:
            settings = dataclasses.replace(settings, max_new_tokens=max_new_tokens)
        with self._lock:
            model, tokenizer = self._model()
            answers = {"fine-tuned": generate(model, tokenizer, question, settings=settings)}
            disable = getattr(model, "disable_adapter", None)
            if disable is not None:
                with disable():
                    answers["base model"] = generate(model, tokenizer, question, settings=settings)
            notes = [thinking_note(tokenizer, settings), TEST_MODEL_NOTE if is_tiny_model(self.job.config.model.name) else None]
            self.note = "\n".join(note for note in notes if note) or None
        self.answers.append({"question": question, **answers})
        return answers

    def _model(self) -> tuple[Any, Any]:
        if self.job.model is not None:
            return self.job.model, self.job.tokenizer
        if self._loaded is None:
            from unsloth_nb.engine.save import load_for_inference

            adapter = self.job.adapter_path
            if adapter is None or not adapter.exists():
                raise FileNotFoundError(f"job {self.job.id} has no saved adapter to load")
            self._loaded = load_for_inference(adapter, max_seq_length=self.job.config.train.max_seq_length)
        return self._loaded


class TryIt:
    """Ask the trained model a question from the job view: made only once a job ended with a model to ask."""

    def __init__(self, ask: Callable[[str], dict[str, str]], note: Callable[[], str | None] = lambda: None) -> None:
        import ipywidgets as widgets

        self._ask = ask
        self._note = note
        self._thread: threading.Thread | None = None
        self.question = widgets.Text(
            placeholder="Ask the fine-tuned model a question…", layout=widgets.Layout(flex="1 1 auto", width="auto"), tooltip=""
        )
        self.ask_button = widgets.Button(
            description="Ask", icon="comment", tooltip="Answer with the fine-tuned and the base model"
        )
        self.answers = widgets.HTML(tooltip="")
        self.ask_button.on_click(lambda _button: self.submit())
        title = widgets.HTML("<b style='font-size:12px'>Try it</b>", tooltip="")
        self.row = widgets.HBox([self.question, self.ask_button], tooltip="")
        self.box = widgets.VBox([title, self.row, self.answers], _dom_classes=("unsloth-nb-try-it",), tooltip="")

    def submit(self) -> threading.Thread | None:
        """Answer in a thread, so the kernel (and this button) stay responsive."""
        question = self.question.value.strip()
        if not question or (self._thread is not None and self._thread.is_alive()):
            return None
        self.ask_button.disabled = True
        self.answers.value = f"<i style='font-size:12px'>Thinking about {html.escape(question)} …</i>"
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._answer, question), daemon=True, name="unsloth-nb-try-it")
        self._thread.start()
        return self._thread

    def _answer(self, question: str) -> None:
        try:
            answers = self._ask(question)
        except Exception as exc:
            self.answers.value = message_html(f"Could not answer: {type(exc).__name__}: {exc}", True)
        else:
            note = self._note()
            self.answers.value = (message_html(note, False) if note else "") + answers_html(question, answers)
        finally:
            self.ask_button.disabled = False

    def close(self) -> None:
        for child in self.box.children:
            for widget in getattr(child, "children", ()):
                widget.close()
            child.close()
        self.box.close()
