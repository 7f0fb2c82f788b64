"""Counts the bad-input corpus: a case is rejected cleanly when every way it is tried passes.

At the end of the run the terminal summary says ``bad inputs: N tried, M rejected cleanly``,
so a case that slips through shows as a gap in one line, beside the failing test that names it.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest
from bad_input_cases import BadInput

_outcomes: dict[str, list[bool]] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("case") if callspec is not None else None
    if isinstance(case, BadInput) and not report.skipped:
        _outcomes.setdefault(case.id, []).append(report.passed)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _outcomes:
        return
    clean = sum(all(results) for results in _outcomes.values())
    terminalreporter.write_line(f"bad inputs: {len(_outcomes)} tried, {clean} rejected cleanly")
    slipped = sorted(case for case, results in _outcomes.items() if not all(results))
    if slipped:
        terminalreporter.write_line(f"bad inputs not rejected cleanly: {', '.join(slipped)}")
