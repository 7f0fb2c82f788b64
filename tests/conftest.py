"""Test-session guards: every endpoint points at loopback, job folders are per test.

A forgotten setting must fail fast here rather than reach the internet: the Hub,
the RunPod API and the pod proxy are pointed at a closed loopback port for the
whole session (tests that need them start local servers and override these), and
any socket connection to a non-loopback address raises at once.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from unsloth_nb.testing.hub_emulator import LoopbackHub
from unsloth_nb.testing.loopback import LOOPBACK_ENV
from unsloth_nb.testing.pytest_runpod import runpod_emulator  # noqa: F401  (fixture)

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# Real secrets of the person running the tests must never reach a test job.
SECRET_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "RUNPOD_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_API_KEY")


def pytest_configure(config: pytest.Config) -> None:
    os.environ.update(LOOPBACK_ENV)
    # Spinning OpenMP threads make every torch step several times slower on a shared 2-core machine.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    for name in SECRET_VARIABLES:
        os.environ.pop(name, None)
    _refuse_non_loopback_connections()


def _refuse_non_loopback_connections() -> None:
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def check(address: object) -> None:
        if isinstance(address, tuple) and address:
            host = str(address[0])
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                if host != "localhost":
                    raise OSError(f"tests may only connect to loopback; refused {host!r}") from None
                return
            if not ip.is_loopback:
                raise OSError(f"tests may only connect to loopback; refused {host}")

    def connect(self: socket.socket, address: object) -> None:
        check(address)
        return original_connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        check(address)
        return original_connect_ex(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def no_secrets_leak_between_tests() -> Iterator[None]:
    """A test that enters a key through a prompt puts it in os.environ; the next test must not see it."""
    for name in SECRET_VARIABLES:
        os.environ.pop(name, None)
    yield
    for name in SECRET_VARIABLES:
        os.environ.pop(name, None)


@pytest.fixture(autouse=True)
def job_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own job folder root, so listings and reattach are isolated."""
    home = tmp_path_factory.mktemp("unsloth-nb-home")
    monkeypatch.setenv("UNSLOTH_NB_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared datasets are missing: expected {SHARED_DATA} beside the repository")
    return SHARED_DATA


@pytest.fixture
def loopback_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackHub]:
    """A loopback Hugging Face Hub for one test, for this process and the pods it starts.

    Only ``HF_ENDPOINT`` moves (from the closed port to this server) and offline mode is
    lifted for the test; ``huggingface_hub`` read it at import, so its constant is patched too.
    """
    import huggingface_hub.constants

    with LoopbackHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        yield hub
