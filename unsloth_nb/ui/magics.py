"""``%unsloth_train``, ``%%unsloth_train`` and ``%unsloth_jobs`` (``%unsloth_enhance`` lives in enhance_magic.py).

The line takes the flags of ``unsloth-nb train``, parsed by the same code
(:func:`unsloth_nb.flags.read_train_args`); a cell body is YAML of a TrainConfig
that the line's flags override. Every user mistake becomes an IPython
``UsageError``: one short message in the cell, no traceback, and nothing started
(no job folder, no pod).

In a notebook the magic returns as soon as the job starts: training runs in a
worker thread, the cell shows the job's live view and the kernel stays free
(``await job`` or ``job.wait()`` block for those who want to). Output from the
job lands in the cell that started it because the job runs in a copy of that
cell's context (ipykernel 7 routes output by contextvars). In a terminal IPython
there is no live view, so the magic follows the job with the CLI's progress
display until it ends (Ctrl-C stops it cleanly), unless ``--no-wait`` is given.

``register`` also installs an IPython handler for UnslothNbError, so a failed
``job.wait()`` / ``await job`` (or a bad ``unsloth_nb.train(...)``) shows its
message instead of a traceback.
"""

from __future__ import annotations

import contextvars
import keyword
import shlex
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class

from unsloth_nb.errors import MAGIC, UnslothNbError, use_wording

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.flags import TrainOptions
    from unsloth_nb.jobrun.job import Job
    from unsloth_nb.jobrun.preflight import Prepared

__all__ = ["UnslothMagics", "register", "show_unsloth_error", "train_help", "unregister"]

_TRAIN_DOC = """Fine-tune a model with LoRA/QLoRA from a notebook cell.

Line form (the flags of `unsloth-nb train`):

    %unsloth_train --model unsloth/Llama-3.2-1B-Instruct --dataset qa.jsonl --epochs 1 -o job

Cell form (YAML of a TrainConfig; flags on the line override it):

    %%unsloth_train -o job --lr 1e-4
    model: unsloth/Qwen3-14B
    dataset: data/support.jsonl
    lora: {r: 16, alpha: 16}
    train: {epochs: 2, max_seq_length: 2048}

In a notebook the job's live view appears under the cell and the kernel stays
free; `await job` or `job.wait()` block until it ends, `job.cancel()` (or the
Stop button) stops it after saving a checkpoint. A plan that rents a RunPod GPU
asks for confirmation first when its estimated cost (capped by --max-cost) is above
--confirm-above (default $1; 0 always asks) or unknown; --yes never asks. Secrets (HF_TOKEN, RUNPOD_API_KEY)
come from the environment or a password prompt, never from a flag.

"""

_JOBS_DOC = """List the jobs recorded on this machine (newest first), or redraw one.

    %unsloth_jobs          a table of jobs: Show draws one, Compare selected overlays their loss curves
    %unsloth_jobs JOB_ID   the job's view, from its event log (also after a kernel restart)

unsloth_nb.compare([JOB_ID, ...]) overlays the loss curves of several jobs.
"""


def train_help() -> str:
    """The full help of ``%unsloth_train``: what the magic does, then every flag."""
    from unsloth_nb.flags import build_train_parser

    parser = build_train_parser(prog="%unsloth_train")
    return _TRAIN_DOC + parser.format_help()


@magics_class
class UnslothMagics(Magics):
    """The unsloth-nb magics; ``%load_ext unsloth_nb`` registers them."""

    @line_cell_magic
    def unsloth_train(self, line: str, cell: str | None = None) -> None:
        argv = _split(line)
        if "-h" in argv or "--help" in argv:
            print(train_help())
            return
        config, options, mistakes = _parse(argv, cell)
        if options.output_name is not None and not _is_name(options.output_name):
            raise UsageError(f"-o {options.output_name!r}: the job needs a valid Python variable name, e.g. -o job")
        in_kernel = _in_kernel(self.shell)
        if options.dry_run:  # the plan and every request a job would send; nothing is rented, no key is needed
            from unsloth_nb.backends.runpod.dry_run import format_dry_run
            from unsloth_nb.planning.plan_text import format_plan

            prepared = _prepare(config, prompt_for_secrets=False, earlier=mistakes, check_secrets=False)
            print(format_plan(prepared.plan) + "\n\n" + format_dry_run(prepared))
            return
        prepared = _prepare(config, prompt_for_secrets=in_kernel, earlier=mistakes)
        prepared.judge_yes = bool(options.yes)  # --yes: the judge's estimate is not asked about either
        plan_shown = False
        if prepared.missing_secrets:  # the plan (and its price) first, then the hidden prompt
            from unsloth_nb.planning.plan_text import format_plan

            print(format_plan(prepared.plan))
            plan_shown = True
            _ask_for_secrets(prepared)
        context = contextvars.copy_context()
        from unsloth_nb.jobrun.controller import confirm_and_start
        from unsloth_nb.ui.tooltips import no_null_tooltips

        def ask(prepared: Prepared, question: str) -> bool:
            self._confirm_rental(prepared, options, context, question, plan_shown=plan_shown)
            return False  # Rent starts it later, from its button

        job = confirm_and_start(prepared, confirm=None if options.yes else ask, say=print, context=context)
        if job is None:
            return
        self._keep(job, options)
        from unsloth_nb.ui.view import JobView

        if in_kernel or options.no_wait:
            view = JobView(job)
            no_null_tooltips(view.widget)
            view.display()
            return
        _follow_in_terminal(job, options)

    @line_magic
    def unsloth_jobs(self, line: str) -> Any:
        from unsloth_nb.jobrun.controller import load_job
        from unsloth_nb.jobrun.store import list_jobs
        from unsloth_nb.ui.jobs_table import JobTable

        args = _split(line)
        if len(args) > 1:
            raise UsageError("usage: %unsloth_jobs [JOB_ID]")
        if args:
            try:
                job = load_job(args[0])
            except UnslothNbError as exc:
                raise UsageError(str(exc)) from None
            job.show()
            return None
        return JobTable(list_jobs())

    # ------------------------------------------------------------------ starting
    def _keep(self, job: Job, options: TrainOptions) -> None:
        """``-o NAME``: the job goes into the user's namespace."""
        if options.output_name:
            assert self.shell is not None  # a magic is always registered on a shell
            self.shell.user_ns[options.output_name] = job

    def _confirm_rental(
        self, prepared: Prepared, options: TrainOptions, context: contextvars.Context, question: str, *, plan_shown: bool = False
    ) -> None:
        """Show the plan (unless already printed) and ``question`` with Rent / Cancel; only a click on Rent starts the pod."""
        from unsloth_nb.planning.plan_text import format_plan
        from unsloth_nb.planning.rental import asking_because
        from unsloth_nb.ui.tooltips import no_null_tooltips
        from unsloth_nb.ui.view import widgets_can_render

        plan_text = format_plan(prepared.plan)
        if not widgets_can_render():
            reason = asking_because(prepared.plan, prepared.config)
            raise UsageError(f"{plan_text}\n\nThis job rents a RunPod GPU: {reason}. Re-run with --yes to start it.")
        import html

        import ipywidgets as widgets
        from IPython.display import display

        rent = widgets.Button(
            description="Rent and start", button_style="warning", icon="play", tooltip="Rent the GPU and start the job"
        )
        cancel = widgets.Button(description="Cancel", tooltip="Do not rent; nothing starts")
        shown_plan = "" if plan_shown else f"<pre style='font-size:12px'>{html.escape(plan_text)}</pre>"
        box = widgets.VBox(
            [
                widgets.HTML(f"{shown_plan}<b>{html.escape(question)}</b>"),
                widgets.HBox([rent, cancel]),
            ]
        )

        def on_rent(_button: Any) -> None:
            from unsloth_nb.jobrun.controller import start_job
            from unsloth_nb.ui.view import JobView

            rent.disabled = cancel.disabled = True
            job = start_job(prepared, context=context)  # the rental was just confirmed
            self._keep(job, options)
            box.children = (JobView(job).widget,)
            no_null_tooltips(box)

        def on_cancel(_button: Any) -> None:
            rent.disabled = cancel.disabled = True
            box.children = (widgets.HTML("<p>Not started: the rental was not confirmed.</p>"),)

        rent.on_click(on_rent)
        cancel.on_click(on_cancel)
        no_null_tooltips(box)
        display(box)


# ---------------------------------------------------------------------- parsing
def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:  # an unclosed quote
        raise UsageError(f"cannot read the flags: {exc}") from None


def _parse(argv: list[str], cell: str | None) -> tuple[Any, TrainOptions, list[UnslothNbError]]:
    """The config and options, and every mistake in the flags and the cell body (checked with the data later)."""
    from unsloth_nb.flags import read_cell_body, read_train_args

    with use_wording(MAGIC):
        try:
            base, pasted = read_cell_body(cell) if cell is not None else (None, None)
            config, options, mistakes = read_train_args(argv, base=base)
            for imported in (options.imported, pasted):
                if imported is not None:  # the knobs not carried over, said before the plan
                    print(imported.report())
            if pasted is not None:
                options.imported = pasted
            return config, options, mistakes
        except UnslothNbError as exc:
            raise UsageError(exc.render(MAGIC)) from None
        except SystemExit:  # argparse's own exits (e.g. --version-like actions) must not end the kernel
            raise UsageError("see %unsloth_train? for the flags") from None


def _prepare(
    config: TrainConfig, *, prompt_for_secrets: bool, earlier: list[UnslothNbError], check_secrets: bool = True
) -> Prepared:
    from unsloth_nb.jobrun.preflight import prepare

    with use_wording(MAGIC):
        try:
            return prepare(
                config, Path.cwd(), prompt_for_secrets=prompt_for_secrets, earlier=earlier, check_secrets=check_secrets
            )
        except UnslothNbError as exc:
            raise UsageError(exc.render(MAGIC)) from None


def _ask_for_secrets(prepared: Prepared) -> None:
    """The hidden prompt for each missing key; a front end without input boxes (nbclient) gets every name instead."""
    from IPython.core.error import StdinNotImplementedError

    from unsloth_nb.errors import MissingSecretError

    try:
        prepared.ask_for_secrets()
    except StdinNotImplementedError:
        raise UsageError(MissingSecretError.of(prepared.missing_secrets).render(MAGIC)) from None
    except UnslothNbError as exc:
        raise UsageError(exc.render(MAGIC)) from None


def _is_name(text: str) -> bool:
    return text.isidentifier() and not keyword.iskeyword(text)


def _in_kernel(shell: Any) -> bool:
    """A Jupyter kernel (a front end can show widgets and answer password prompts)."""
    return getattr(shell, "kernel", None) is not None


def _follow_in_terminal(job: Job, options: TrainOptions) -> None:
    """Terminal IPython: the CLI's progress display until the job ends; Ctrl-C stops it cleanly."""
    if threading.current_thread() is threading.main_thread():
        from unsloth_nb.ui.console import follow_in_terminal

        follow_in_terminal(job, json_lines=options.json, quiet=options.quiet)
    job.wait()  # raises JobFailedError for a failed job: the error handler shows its message


# ---------------------------------------------------------------------- registration
_HANDLER_ATTR = "_unsloth_nb_previous_custom_exc"


def show_unsloth_error(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> list[str] | None:
    """Show an UnslothNbError as its message alone; hand other exceptions to the handler we replaced."""
    if not issubclass(etype, UnslothNbError):
        types, handler = getattr(shell, _HANDLER_ATTR, None) or ((), None)
        if handler is not None and issubclass(etype, types):
            return handler(etype, value, tb, tb_offset)
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        return None
    stb = [f"\x1b[0;31m{etype.__name__}\x1b[0m: {value}"]
    # IPython discards what a custom handler returns; showing it is up to us (ipykernel sends an error).
    shell._showtraceback(etype, value, stb)
    return stb


def register(ip: Any) -> None:
    """Register the magics and the short error display for UnslothNbError."""
    ip.register_magics(UnslothMagics)
    from unsloth_nb.ui.enhance_magic import EnhanceMagics

    ip.register_magics(EnhanceMagics)
    if getattr(ip, _HANDLER_ATTR, None) is None:
        previous_types = tuple(t for t in ip.custom_exceptions if not issubclass(t, UnslothNbError))
        previous_handler = ip.CustomTB if previous_types else None
        setattr(ip, _HANDLER_ATTR, (previous_types, previous_handler))
        ip.set_custom_exc((*previous_types, UnslothNbError), show_unsloth_error)


def unregister(ip: Any) -> None:
    """Remove the magics and give the exception handling back as it was."""
    for kind, names in (("line", ("unsloth_train", "unsloth_jobs")), ("cell", ("unsloth_train",))):
        for name in names:
            ip.magics_manager.magics[kind].pop(name, None)
    ip.magics_manager.registry.pop(UnslothMagics.__name__, None)
    for kind in ("line", "cell"):
        ip.magics_manager.magics[kind].pop("unsloth_enhance", None)
    ip.magics_manager.registry.pop("EnhanceMagics", None)
    previous = getattr(ip, _HANDLER_ATTR, None)
    if previous is not None:
        types, handler = previous
        if handler is not None:
            ip.CustomTB, ip.custom_exceptions = handler, types
        else:
            ip.set_custom_exc((), None)
        setattr(ip, _HANDLER_ATTR, None)


# The help is generated from the config schema, so `%unsloth_train?` lists every flag.
UnslothMagics.unsloth_train.__doc__ = train_help()
UnslothMagics.unsloth_jobs.__doc__ = _JOBS_DOC
