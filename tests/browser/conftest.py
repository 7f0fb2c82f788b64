"""A real JupyterLab server and a real Chromium page for the browser tests.

The browser tests prove what a user sees: a notebook opened in JupyterLab, run
with the menu, rendering the job view that the kernel drives over widget comms.
Everything stays on this machine:

* JupyterLab listens on 127.0.0.1 with a random token, runs the venv's kernel
  with the session's loopback-only settings (Hub, RunPod API and pod proxy all
  pointed at a closed local port) and job folders in a temp dir, and serves a
  temp copy of the notebook, so the repository's copy stays output-free.
* Chromium resolves no host but 127.0.0.1, uses no proxy, and the page aborts
  (and records) any request for another host.
* Screenshots go to ``artifacts/screenshots/`` and the server log and browser
  console to ``artifacts/logs/``, which CI keeps. A failing test leaves a
  ``<test>-failure.png`` there too.

The browser is found by ``find_chromium.py``: a system Chromium if there is one,
else Playwright's own (installed on first use when the machine reaches the internet).
When there is no browser at all, or Playwright or JupyterLab is missing, the tests
fail with the command that installs it, because a silently skipped browser test is
a browser test that never runs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from find_chromium import ChromiumNotFound, find_chromium

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
LOGS = REPO_ROOT / "artifacts" / "logs"

PIP_HINT = "`.venv/bin/pip install jupyterlab playwright` (both are in the dev extra: `make install`)."

#: Settings every endpoint a kernel might call must have, pointing at loopback (tests/conftest.py sets them).
LOOPBACK_SETTINGS = ("HF_ENDPOINT", "RUNPOD_API_BASE_URL", "UNSLOTH_NB_RUNPOD_PROXY_TEMPLATE")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})

#: JupyterLab user settings: no news/update toast over the page; every cell laid out even when
#: scrolled out of view, so a widget below the fold still renders and can be measured.
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}

#: Chromium flags: nothing in the background may reach the network, and no host but loopback resolves.
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root in a container
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-sync",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--no-pings",
    "--no-proxy-server",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]

IDLE_JS = """
() => Array.from(document.querySelectorAll('#jp-main-statusbar .jp-StatusBar-TextItem'))
  .some((item) => /\\| Idle$/.test(item.textContent.trim()) && !item.textContent.includes('No Kernel'))
"""

SERVER_START_SECONDS = 120
KERNEL_IDLE_MS = 120_000


# ---------------------------------------------------------------------- requirements
@pytest.fixture(scope="module")
def chromium() -> str:
    missing = [name for name in ("playwright", "jupyterlab") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.fail(f"the browser tests need {' and '.join(missing)}: {PIP_HINT}", pytrace=False)
    try:
        return find_chromium().path
    except ChromiumNotFound as exc:
        missing_browser = str(exc)
    pytest.fail(f"the browser tests need a Chromium: {missing_browser}", pytrace=False)


# ---------------------------------------------------------------------- the server
@dataclass
class LabServer:
    """A running JupyterLab: where it listens, what it serves, and the environment its kernels get."""

    url: str
    token: str
    root: Path
    home: Path
    env: dict[str, str]
    log_path: Path

    def copy_notebook(self, source: Path) -> Path:
        """A fresh copy of ``source`` in the served folder (the original stays output-free)."""
        target = self.root / source.name
        shutil.copyfile(source, target)
        return target

    def page_url(self, notebook: Path) -> str:
        relative = notebook.relative_to(self.root).as_posix()
        return f"{self.url}/lab/tree/{relative}?token={self.token}&reset"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _kernel_environment(home: Path) -> dict[str, str]:
    """The server's (and so the kernels') environment: the session's, with everything pinned to loopback."""
    env = dict(os.environ)
    for name in LOOPBACK_SETTINGS:
        value = env.get(name, "")
        if urlsplit(value).hostname not in LOOPBACK_HOSTS:
            pytest.fail(f"{name}={value!r}: the browser tests need it on loopback (tests/conftest.py sets it)", pytrace=False)
    env.update(
        {
            "UNSLOTH_NB_TUTORIAL_MODEL": "tiny",
            "UNSLOTH_NB_HOME": str(home / "jobs-home"),
            # Private Jupyter folders: our kernelspec, no user config, settings or kernels leak in.
            "JUPYTER_CONFIG_DIR": str(home / "jupyter-config"),
            "JUPYTER_DATA_DIR": str(home / "jupyter-data"),
            "JUPYTER_RUNTIME_DIR": str(home / "jupyter-runtime"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "IPYTHONDIR": str(home / "ipython"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("JUPYTER_PATH", None)
    return env


def _write_kernelspec(env: dict[str, str]) -> None:
    """``python3`` is this venv's interpreter, whatever else the machine has installed."""
    spec_dir = Path(env["JUPYTER_DATA_DIR"]) / "kernels" / "python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))


def _write_lab_settings(settings_dir: Path) -> None:
    for plugin, values in LAB_SETTINGS.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _wait_until_ready(process: subprocess.Popen[bytes], url: str, token: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
            pytest.fail(f"JupyterLab exited with {process.returncode} before it was ready:\n{tail}", pytrace=False)
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer /api/status within {SERVER_START_SECONDS} s (log: {log_path})", pytrace=False)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM shuts the kernels down with the server; kill only if that hangs."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def lab_server(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    home = tmp_path_factory.mktemp("jupyterlab")
    root = home / "work"
    root.mkdir()
    env = _kernel_environment(home)
    _write_kernelspec(env)
    _write_lab_settings(home / "lab-user-settings")
    port, token = _free_port(), secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / "jupyterlab.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.workspaces_dir={home / 'lab-workspaces'}",
        f"--LabApp.user_settings_dir={home / 'lab-user-settings'}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_ready(process, url, token, log_path)
        yield LabServer(url, token, root, home, env, log_path)
    finally:
        _stop(process)


# ---------------------------------------------------------------------- the browser
# Module scope: while Playwright's sync API is open it keeps an event loop running on the main
# thread, which would break asyncio.run() in every test collected after this folder.
@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@dataclass
class PageRecord:
    """What the page did besides rendering: requests we refused and what it logged as errors."""

    refused: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the item, so a fixture can screenshot a failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def page_record() -> PageRecord:
    return PageRecord()


@pytest.fixture
def page(browser: Browser, page_record: PageRecord, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page whose requests may only go to loopback; screenshots itself when the test fails."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, service_workers="block")

    def guard(route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if host in LOOPBACK_HOSTS:
            route.continue_()
        else:
            page_record.refused.append(route.request.url)
            route.abort()

    context.route(re.compile(r"^(?!(data|blob):)"), guard)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.on("console", lambda msg: page_record.console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: page_record.console_errors.append(f"page error: {error}"))
    try:
        yield page
    finally:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            try:
                page.screenshot(path=str(SCREENSHOTS / f"{name}-failure.png"), full_page=True)
            except Exception as exc:  # the page may be what broke; the log still says so
                page_record.console_errors.append(f"(failure screenshot not taken: {exc})")
        LOGS.mkdir(parents=True, exist_ok=True)
        lines = [f"refused: {url}" for url in page_record.refused] + page_record.console_errors
        (LOGS / f"{name}-browser-console.log").write_text("\n".join(lines) + "\n")
        context.close()


# ---------------------------------------------------------------------- driving JupyterLab
class Lab:
    """The few JupyterLab moves the tests make, with the selectors in one place."""

    def __init__(self, page: Page, server: LabServer) -> None:
        self.page = page
        self.server = server

    def open(self, notebook: Path) -> None:
        """Open ``notebook`` and wait until its kernel is idle."""
        self.page.goto(self.server.page_url(notebook), wait_until="domcontentloaded", timeout=KERNEL_IDLE_MS)
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=KERNEL_IDLE_MS)
        self.wait_idle(KERNEL_IDLE_MS)

    def wait_idle(self, timeout_ms: int) -> None:
        """The status bar reads "<kernel> | Idle".

        The toolbar's execution indicator alone is not enough: it reads idle for a
        moment while the notebook has no kernel yet, and Run All clicked then opens
        a "Select Kernel" dialog instead of running anything.
        """
        self.page.wait_for_function(IDLE_JS, timeout=timeout_ms, polling=250)

    def menu(self, menu: str, command: str) -> None:
        """Click a main-menu item by its command id (labels change between versions, ids less)."""
        self.page.locator("#jp-menu-panel .lm-MenuBar-itemLabel", has_text=menu).first.click()
        self.page.locator(f".lm-Menu-item[data-command='{command}']").click()

    def run_all(self) -> None:
        self.menu("Run", "runmenu:run-all")

    def cells(self) -> Locator:
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")

    def add_code_cell(self, source: str) -> Locator:
        """Append a code cell with the notebook's "add a cell" footer and type ``source`` into it.

        ``insert_text`` pastes rather than types, so the editor's bracket closing and
        auto-indent cannot rewrite the code; the check below makes sure of that.
        """
        count = self.cells().count()
        self.page.locator(".jp-Notebook-footer").click()
        cell = self.cells().nth(count)
        cell.wait_for()
        editor = cell.locator(".cm-content")
        editor.click()
        self.page.keyboard.insert_text(source)
        typed = editor.evaluate("node => node.cmView ? node.cmView.view.state.doc.toString() : node.innerText")
        assert typed.strip() == source.strip(), f"the new cell holds {typed!r}, not the code the test typed"
        return cell

    def run_cell(self, cell: Locator) -> None:
        cell.locator(".cm-content").click()
        self.page.keyboard.press("Shift+Enter")

    def screenshot(self, name: str, target: Locator | None = None) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        if target is not None:
            target.scroll_into_view_if_needed()
            target.screenshot(path=str(path))
        else:
            self.page.screenshot(path=str(path))
        return path


@pytest.fixture
def lab(page: Page, lab_server: LabServer) -> Lab:
    return Lab(page, lab_server)
