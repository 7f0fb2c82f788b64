"""Which Chromium the browser tests drive: the system's if there is one, else Playwright's own.

A fresh clone on a developer's machine usually has no Debian Chromium, but it has the internet,
and Playwright can download its own build. So the order is:

1. ``UNSLOTH_NB_CHROMIUM``, when set (a binary the user chose; an error if it is not a file);
2. a system Chromium or Chrome (Debian's real binary first, then ``chromium``, ``chromium-browser``,
   ``google-chrome``, ``google-chrome-stable`` on PATH);
3. a browser Playwright installed earlier;
4. ``python -m playwright install chromium``, then 3 again;

and only when all of them fail, an error that says what to install. CI installs Debian's Chromium
(``.ci/run``), since Playwright's download site is not reachable there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Debian's and Ubuntu's real binaries. The ``/usr/bin/chromium`` wrapper sources /etc/chromium.d,
#: which exports Google API keys and adds flags such as --enable-remote-extensions; the binary
#: runs with our flags only.
DISTRO_BINARIES = ("/usr/lib/chromium/chromium", "/usr/lib/chromium-browser/chromium-browser")
#: Names a system Chromium or Chrome has on PATH, in the order they are tried.
PATH_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

PLAYWRIGHT_INSTALL = (sys.executable, "-m", "playwright", "install", "chromium")
INSTALL_SECONDS = 600

INSTALL_HINT = (
    "Install one: `apt-get install -y chromium` (Debian/Ubuntu; what CI does), or "
    "`.venv/bin/python -m playwright install chromium` on a machine that reaches the internet; "
    "UNSLOTH_NB_CHROMIUM=/path/to/chrome picks a binary."
)


class ChromiumNotFound(Exception):
    """No browser to drive; the message says what was tried and what to install."""


@dataclass(frozen=True)
class Chromium:
    path: str
    source: str  # "UNSLOTH_NB_CHROMIUM" | "system" | "playwright"


def system_chromium(env: Mapping[str, str] | None = None, distro_binaries: Sequence[str] = DISTRO_BINARIES) -> str | None:
    """A Chromium or Chrome installed on this machine, or None."""
    env = os.environ if env is None else env
    for candidate in distro_binaries:
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    search_path = env.get("PATH", os.defpath)
    for name in PATH_NAMES:
        found = shutil.which(name, path=search_path)
        if found:
            return found
    return None


def playwright_chromium() -> str | None:
    """The Chromium Playwright downloaded (``playwright install``), if it is there."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    with sync_playwright() as playwright:
        path = playwright.chromium.executable_path
    return path if path and Path(path).is_file() else None


def install_with_playwright() -> str:
    """Run ``playwright install chromium``; returns its output (raises ChromiumNotFound when it fails)."""
    try:
        done = subprocess.run(
            PLAYWRIGHT_INSTALL, capture_output=True, text=True, timeout=INSTALL_SECONDS, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ChromiumNotFound(f"`{' '.join(PLAYWRIGHT_INSTALL[1:])}` did not finish: {exc}") from exc
    output = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise ChromiumNotFound(f"`python -m playwright install chromium` failed (exit {done.returncode}): {_why(output)}")
    return output


def _why(output: str) -> str:
    """Playwright's own error lines (it retries, so each once), else its last lines."""
    errors = list(dict.fromkeys(line.strip() for line in output.splitlines() if line.strip().startswith("Error:")))
    return "; ".join(errors[:3]) if errors else " / ".join(output.splitlines()[-3:])


def find_chromium(
    env: Mapping[str, str] | None = None,
    *,
    distro_binaries: Sequence[str] = DISTRO_BINARIES,
    installed: Callable[[], str | None] = playwright_chromium,
    install: Callable[[], object] = install_with_playwright,
) -> Chromium:
    """The browser to drive, installing Playwright's when the machine has none (see the module docstring)."""
    env = os.environ if env is None else env
    override = env.get("UNSLOTH_NB_CHROMIUM")
    if override:
        if not Path(override).is_file():
            raise ChromiumNotFound(f"UNSLOTH_NB_CHROMIUM={override} is not a file. {INSTALL_HINT}")
        return Chromium(override, "UNSLOTH_NB_CHROMIUM")
    path = system_chromium(env, distro_binaries)
    if path:
        return Chromium(path, "system")
    path = installed()
    if path:
        return Chromium(path, "playwright")
    try:
        install()
    except ChromiumNotFound as exc:
        raise ChromiumNotFound(
            f"no Chromium on this machine ({', '.join(PATH_NAMES)} on PATH), and {exc}\n{INSTALL_HINT}"
        ) from None
    path = installed()
    if path:
        return Chromium(path, "playwright")
    raise ChromiumNotFound(
        f"no Chromium on this machine ({', '.join(PATH_NAMES)} on PATH), and `playwright install chromium` "
        f"ran but left no browser. {INSTALL_HINT}"
    )
