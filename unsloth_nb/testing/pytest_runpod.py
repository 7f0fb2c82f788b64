"""The ``runpod_emulator`` pytest fixture: a fresh loopback RunPod per test, and a bill check at the end.

Use it from a conftest with ``from unsloth_nb.testing.pytest_runpod import runpod_emulator``.
For the test's duration it points everything at the emulator:

- ``RUNPOD_API_BASE_URL``: the emulator (the SDK reads it on every call);
- ``RUNPOD_API_KEY`` and ``runpod.api_key``: :data:`FAKE_API_KEY` (the SDK ignores the
  variable and reads only the module attribute, so both are set when the SDK is installed);
- ``UNSLOTH_NB_RUNPOD_PROXY_TEMPLATE``: the emulator's pod proxy template;
- ``NO_PROXY``: loopback, so a proxy configured on the machine is never used.

Pods start 0.2 s after creation (set ``runpod_emulator.start_delay`` to change it).
At teardown the test fails if any pod is still billing: every code path that
rents a pod must also end it. Pod logs stay in the test's temporary folder.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest

from unsloth_nb.testing.runpod_emulator import RunPodEmulator

#: The account key the fixture's emulator accepts (a made-up value in RunPod's format).
FAKE_API_KEY = "rpa_" + "EMULATOR0TEST0KEY".ljust(38, "0")  # built, so no token-shaped literal is committed


@pytest.fixture
def runpod_emulator(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunPodEmulator]:
    """A running :class:`RunPodEmulator` wired into the environment; fails the test if a pod is left billing."""
    workdir = tmp_path_factory.mktemp("runpod-emulator")
    with RunPodEmulator(start_delay=0.2, api_key=FAKE_API_KEY, workdir=workdir, restart_delay=0.2, stop_grace_s=2.0) as emulator:
        monkeypatch.setenv("RUNPOD_API_BASE_URL", emulator.api_base_url)
        monkeypatch.setenv("RUNPOD_API_KEY", FAKE_API_KEY)
        monkeypatch.setenv("UNSLOTH_NB_RUNPOD_PROXY_TEMPLATE", emulator.proxy_url_template)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
        try:
            sdk = importlib.import_module("runpod")
        except ImportError:
            sdk = None
        if sdk is not None:
            monkeypatch.setattr(sdk, "api_key", FAKE_API_KEY)
        yield emulator
        billing = {pod_id: emulator.pod(pod_id) for pod_id in emulator.ledger.running_pods()}
    if billing:
        names = ", ".join(f"{pod_id} ({info.name if info else '?'})" for pod_id, info in billing.items())
        pytest.fail(f"pods still billing at the end of the test: {names}; logs in {workdir / 'logs'}", pytrace=False)
