"""How the browser tests find a Chromium, on machines set up in each way (PATH and folders faked, nothing installed)."""

from __future__ import annotations

import sys
from pathlib import Path

import find_chromium as module
import pytest
from find_chromium import INSTALL_HINT, PATH_NAMES, ChromiumNotFound, find_chromium, system_chromium


def executable(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


class FakePlaywright:
    """Playwright's browser folder: empty until ``install`` runs, which may also fail as offline machines do."""

    def __init__(self, folder: Path, *, already: bool = False, install_fails: bool = False) -> None:
        self.browser = folder / "ms-playwright" / "chromium-1234" / "chrome-linux" / "chrome"
        self.install_fails = install_fails
        self.installs = 0
        if already:
            executable(self.browser.parent, self.browser.name)

    def installed(self) -> str | None:
        return str(self.browser) if self.browser.is_file() else None

    def install(self) -> str:
        self.installs += 1
        if self.install_fails:
            raise ChromiumNotFound(
                "`python -m playwright install chromium` failed (exit 1):\nError: getaddrinfo ENOTFOUND cdn.playwright.dev"
            )
        executable(self.browser.parent, self.browser.name)
        return "Chromium downloaded"


def test_a_system_chromium_on_path_is_used_and_nothing_is_installed(tmp_path: Path) -> None:
    chrome = executable(tmp_path / "bin", "google-chrome")
    playwright = FakePlaywright(tmp_path)

    found = find_chromium(
        {"PATH": str(tmp_path / "bin")}, distro_binaries=(), installed=playwright.installed, install=playwright.install
    )

    assert (found.path, found.source) == (str(chrome), "system")
    assert playwright.installs == 0


def test_chromium_comes_before_chrome_and_the_distro_binary_before_both(tmp_path: Path) -> None:
    for name in PATH_NAMES:
        executable(tmp_path / "bin", name)
    env = {"PATH": str(tmp_path / "bin")}
    assert system_chromium(env, distro_binaries=()) == str(tmp_path / "bin" / "chromium")

    debian = executable(tmp_path / "usr-lib-chromium", "chromium")
    assert system_chromium(env, distro_binaries=(str(tmp_path / "missing"), str(debian))) == str(debian)


def test_without_a_system_browser_playwright_installs_its_own(tmp_path: Path) -> None:
    playwright = FakePlaywright(tmp_path)

    found = find_chromium(
        {"PATH": str(tmp_path / "empty")}, distro_binaries=(), installed=playwright.installed, install=playwright.install
    )

    assert (found.path, found.source) == (str(playwright.browser), "playwright")
    assert playwright.installs == 1


def test_a_browser_playwright_installed_before_is_not_downloaded_again(tmp_path: Path) -> None:
    playwright = FakePlaywright(tmp_path, already=True)

    found = find_chromium({"PATH": ""}, distro_binaries=(), installed=playwright.installed, install=playwright.install)

    assert found.source == "playwright" and playwright.installs == 0


def test_with_neither_the_error_says_what_failed_and_what_to_install(tmp_path: Path) -> None:
    playwright = FakePlaywright(tmp_path, install_fails=True)

    with pytest.raises(ChromiumNotFound) as caught:
        find_chromium(
            {"PATH": str(tmp_path / "empty")}, distro_binaries=(), installed=playwright.installed, install=playwright.install
        )

    message = str(caught.value)
    assert "no Chromium on this machine" in message and "ENOTFOUND" in message
    assert "apt-get install -y chromium" in message and INSTALL_HINT in message


def test_an_install_that_leaves_no_browser_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ChromiumNotFound, match="left no browser"):
        find_chromium({"PATH": ""}, distro_binaries=(), installed=lambda: None, install=lambda: "done")


def test_unsloth_nb_chromium_wins_and_must_be_a_file(tmp_path: Path) -> None:
    mine = executable(tmp_path / "opt", "my-chrome")
    executable(tmp_path / "bin", "chromium")
    env = {"PATH": str(tmp_path / "bin"), "UNSLOTH_NB_CHROMIUM": str(mine)}

    assert find_chromium(env, distro_binaries=()).path == str(mine)

    with pytest.raises(ChromiumNotFound, match="is not a file"):
        find_chromium({**env, "UNSLOTH_NB_CHROMIUM": str(tmp_path / "nope")}, distro_binaries=())


def test_a_failed_playwright_install_is_summarised_by_its_error_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real installer function, run on a stand-in command that fails as an offline download does."""
    offline = "for _ in range(3): print('Downloading Chrome\\nError: getaddrinfo ENOTFOUND cdn.playwright.dev\\n  errno: -3008')"
    monkeypatch.setattr(module, "PLAYWRIGHT_INSTALL", (sys.executable, "-c", offline + "; raise SystemExit(1)"))

    with pytest.raises(ChromiumNotFound) as caught:
        module.install_with_playwright()

    assert (
        str(caught.value)
        == "`python -m playwright install chromium` failed (exit 1): Error: getaddrinfo ENOTFOUND cdn.playwright.dev"
    )
