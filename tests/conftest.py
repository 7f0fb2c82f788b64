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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures import fitting_rows, jsonl_bytes, superbowl_records, vocab_texts

from unsloth_nb.testing.hub_emulator import LoopbackHub
from unsloth_nb.testing.loopback import LOOPBACK_ENV
from unsloth_nb.testing.pytest_runpod import runpod_emulator  # noqa: F401  (fixture)
from unsloth_nb.testing.runpod_emulator import RunPodEmulator
from unsloth_nb.testing.s3_emulator import LoopbackS3

# Real secrets of the person running the tests must never reach a test job.
SECRET_VARIABLES = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "RUNPOD_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
)


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
def superbowl_rows() -> list[dict[str, Any]]:
    """The first 40 Super Bowl LIX prompt/completion pairs (real data, MIT, in tests/data)."""
    return superbowl_records()


@pytest.fixture
def dataset_file(tmp_path: Path, superbowl_rows: list[dict[str, Any]]) -> Path:
    """The Super Bowl rows as a JSONL file, every row cut to fit the tiny model: what emulated jobs train on."""
    path = tmp_path / "superbowl.jsonl"
    path.write_bytes(jsonl_bytes(fitting_rows(superbowl_rows)))
    return path


@pytest.fixture
def serverless(runpod_emulator: RunPodEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunPodEmulator]:  # noqa: F811  (runpod_emulator is the imported fixture)
    """The emulator with its serverless job API (api.runpod.ai's stand-in) wired in; fails the test when an
    endpoint, a template or a billing worker is left at the end."""
    monkeypatch.setenv("RUNPOD_ENDPOINT_BASE_URL", runpod_emulator.serverless_url)
    yield runpod_emulator
    state = runpod_emulator.serverless
    deadline = time.monotonic() + 15
    while state.active_workers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert state.active_workers() == [], "serverless workers still billing"
    assert state.endpoints == {}, "endpoints left behind"
    assert state.templates == {}, "templates left behind"


@pytest.fixture
def superbowl_on_hub(loopback_hub: LoopbackHub, dataset_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The dataset file's rows as the Hub dataset ``org/superbowl`` (empty Hub and data caches of the test's own)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("UNSLOTH_NB_DATA_CACHE", str(tmp_path / "data-cache"))
    loopback_hub.add_dataset("org/superbowl", {"data/train-00000-of-00001.jsonl": dataset_file.read_bytes()})
    return "org/superbowl"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, superbowl_rows: list[dict[str, Any]]) -> Path:
    """The one tiny random Llama of the suite, built once per session (a second or two).

    Its tokenizer learned its merges from the Super Bowl rows the tests train on, so those
    rows tokenize into words, not bytes. ``unsloth`` is imported first, as in a real run,
    so transformers is patched before anything in this process uses it.
    """
    from unsloth_nb.engine.model import import_unsloth
    from unsloth_nb.testing import build_tiny_model

    import_unsloth()
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama", vocab_texts=vocab_texts(superbowl_rows))


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


@pytest.fixture(scope="session")
def s3_server() -> Iterator[LoopbackS3]:
    """One loopback S3 server (moto) for the session; tests take :func:`loopback_s3`."""
    with LoopbackS3() as server:
        yield server


@pytest.fixture
def loopback_s3(s3_server: LoopbackS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LoopbackS3]:
    """The session's S3 server, emptied, with this process's boto3 pointed at it (credentials included)."""
    s3_server.reset()
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("UNSLOTH_NB_DATA_CACHE", str(tmp_path / "data-cache"))
    yield s3_server
