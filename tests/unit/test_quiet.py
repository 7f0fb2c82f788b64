"""Library chatter stays out of the cell: captured into the job, runpod's root logger undone, exit spam muted.

Each check runs in a fresh interpreter: they change process-wide things (the
standard streams, the root logger, what happens at exit) that must not leak into
the rest of the test session.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest


def run_python(code: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout)


def test_output_printed_inside_a_job_goes_to_its_log_and_file_not_the_cell(tmp_path) -> None:
    done = run_python(
        f"""
        import contextvars, json, logging, sys, threading, warnings
        from pathlib import Path
        from unsloth_nb.jobrun.events import EventLog
        from unsloth_nb.engine.quiet import capture_job_output

        handler = logging.StreamHandler()  # grabbed sys.stderr before the job started, as transformers' does
        logging.getLogger("some.library").addHandler(handler)
        log = EventLog("job", Path({str(tmp_path)!r}) / "events.jsonl")
        context = contextvars.copy_context()
        capture_job_output(context, log, Path({str(tmp_path)!r}) / "output.log")

        def job_thread():
            print("Unsloth (CPU): banner")
            for i in range(0, 101, 25):
                sys.stderr.write(f"\\rLoading weights: {{i}}%")
            sys.stderr.write("\\n")
            warnings.warn("Enum subclass warning from _pytree")
            logging.getLogger("some.library").warning("Disabling Tensorflow")
            logging.getLogger("unsloth_nb.backends.runpod.client").info("RunPod: create failed; retry 1 in 0.2 s")

        thread = threading.Thread(target=context.run, args=(job_thread,))
        thread.start(); thread.join()
        print("the user's own line")
        log.emit("status", state="succeeded")
        print("after the job")
        lines = [e.data["message"] for e in log.read(kinds={{"log"}})]
        print("EVENTS=" + json.dumps(lines))
        """
    )
    assert done.returncode == 0, done.stderr
    events = json.loads(done.stdout.split("EVENTS=", 1)[1])
    assert "Unsloth (CPU): banner" in events
    assert "Loading weights: 100%" in events and not any("25%" in e for e in events), "a redrawn bar is one line"
    assert any("Enum subclass" in e for e in events)
    assert any("Disabling Tensorflow" in e for e in events)
    assert any("retry 1 in 0.2 s" in e for e in events)
    cell = done.stdout.split("EVENTS=", 1)[0] + done.stderr
    for noise in ("banner", "Loading weights", "Enum subclass", "Tensorflow", "retry"):
        assert noise not in cell, f"{noise!r} reached the cell"
    assert "the user's own line" in cell and "after the job" in cell
    assert "Loading weights: 100%" in (tmp_path / "output.log").read_text()


def test_importing_runpod_leaves_the_root_logger_alone() -> None:
    done = run_python(
        """
        import logging
        root = logging.getLogger()
        before = (list(root.handlers), root.level)
        import unsloth_nb.backends.runpod  # installs the guard
        import runpod
        assert (list(root.handlers), root.level) == before, (root.handlers, root.level)
        logging.getLogger("transformers.something").info("Disabling Tensorflow")
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr
    assert "Disabling Tensorflow" not in done.stderr and done.stdout.strip() == "ok"


def test_a_process_that_loaded_triton_exits_without_the_leak_report() -> None:
    code = """
        import os, sys, types
        from unsloth_nb.engine.quiet import silence_exit_leak_reports
        silence_exit_leak_reports()
        sys.modules["triton"] = types.ModuleType("triton")  # what import_unsloth loads

        class Binding:  # freed while the interpreter finalises, like nanobind's internals
            def __del__(self):
                os.write(2, b"nanobind: leaked 54 instances!\\n")

        keep = Binding()
        sys.stderr.write("a real error message\\n")
        raise SystemExit(3)
        """
    done = run_python(code)
    assert done.returncode == 3, "the exit status is kept"
    assert "a real error message" in done.stderr, "stderr works until exit"
    assert "leaked" not in done.stderr


@pytest.mark.parametrize("variable", ["UNSLOTH_NB_SHOW_EXIT_LEAKS"])
def test_the_leak_report_can_be_kept(variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable, "1")
    done = run_python(
        """
        import os, sys, types
        from unsloth_nb.engine.quiet import silence_exit_leak_reports
        silence_exit_leak_reports()
        sys.modules["triton"] = types.ModuleType("triton")
        class Binding:
            def __del__(self):
                os.write(2, b"nanobind: leaked 54 instances!\\n")
        keep = Binding()
        """
    )
    assert "leaked" in done.stderr


def test_the_capture_survives_ipython_resetting_stream_writes_after_each_cell(tmp_path) -> None:
    """IPython 9 wraps ``sys.stdout.write`` for a cell and puts back what it found: a job started in
    one cell must still capture what its thread prints during later cells."""
    done = run_python(
        f"""
        import contextvars, threading, time
        from pathlib import Path
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        shell.run_cell('''
        import contextvars
        from pathlib import Path
        from unsloth_nb.jobrun.events import EventLog
        from unsloth_nb.engine.quiet import capture_job_output
        log = EventLog("job", Path({str(tmp_path)!r}) / "events.jsonl")
        job_context = contextvars.copy_context()
        capture_job_output(job_context, log, None)
        ''', store_history=True)
        shell.run_cell("x = 1", store_history=True)
        ns = shell.user_ns
        thread = threading.Thread(target=ns["job_context"].run, args=(print, "Unsloth (CPU): a banner"))
        thread.start(); thread.join()
        print("EVENTS=", [e.data["message"] for e in ns["log"].read()])
        """
    )
    assert done.returncode == 0, done.stderr
    cell, events = done.stdout.split("EVENTS=", 1)
    assert "Unsloth (CPU): a banner" in events and "banner" not in cell


def test_outside_a_job_our_log_records_reach_the_root_handlers_as_before() -> None:
    done = run_python(
        """
        import contextvars, logging
        from unsloth_nb.jobrun.events import EventLog
        from unsloth_nb.engine.quiet import capture_job_output
        seen = []
        class Keep(logging.Handler):
            def emit(self, record):
                seen.append(record.getMessage())
        logging.getLogger().addHandler(Keep())
        capture_job_output(contextvars.copy_context(), EventLog("j"), None)
        logging.getLogger("unsloth_nb.x").warning("outside any job")
        print(seen)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['outside any job']"
