"""A pod never gives up ending itself (issue 18, build 4): the worker and the boot script retry until RunPod answers.

RunPod's API is cut off from pods with the emulator's ``unreachable_from`` knob (every
call from a pod's own key is dropped unanswered, as in an outage), then restored.
"""

from __future__ import annotations

import re
import subprocess
import threading

from unsloth_nb.backends.runpod.api_types import PodSpec
from unsloth_nb.backends.runpod.bootstrap import boot_script
from unsloth_nb.backends.runpod.client import RunPodClient
from unsloth_nb.testing.runpod_emulator import RunPodEmulator
from unsloth_nb.worker.selfterm import PodIdentity, terminate_until_gone

RTX_4090 = "NVIDIA GeForce RTX 4090"


def test_the_worker_retries_ending_its_pod_for_as_long_as_the_api_is_unreachable(runpod_emulator: RunPodEmulator) -> None:
    client = RunPodClient()
    pod = client.create_pod(PodSpec(name="unsloth-nb-selfterm", image="img", gpu_type_id=RTX_4090, docker_args="exec sleep 600"))
    try:
        key = runpod_emulator.pod(pod.id).api_key  # type: ignore[union-attr]
        identity = PodIdentity(pod.id, key, runpod_emulator.api_base_url)
        runpod_emulator.faults.update({"unreachable_from": "pods"})
        failures: list[tuple[int, float]] = []
        pauses: list[float] = []

        def pause(seconds: float) -> None:
            pauses.append(seconds)
            if len(failures) >= 4:  # four rounds failed: the API comes back
                runpod_emulator.faults.update({"unreachable_from": ""})

        assert terminate_until_gone(identity, lambda n, wait: failures.append((n, wait)), max_delay=4.0, sleep=pause)
        assert runpod_emulator.pod(pod.id) is None
        assert [n for n, _ in failures] == [1, 2, 3, 4]
        assert pauses == [1.0, 2.0, 4.0, 4.0]  # doubling, capped
    finally:
        runpod_emulator.faults.update({"unreachable_from": ""})
        client.terminate_pod(pod.id, poll=0.05)


def test_the_boot_script_keeps_asking_for_the_end_of_its_pod_and_never_exits(runpod_emulator: RunPodEmulator) -> None:
    """The boot script's last resort: no ``sleep infinity``; a retry with a line in the pod log each time."""
    script = boot_script()
    functions = "\n".join(
        re.search(rf"^{name}\(\) \{{.*?^\}}$", script, re.S | re.M).group(0)  # type: ignore[union-attr]
        for name in ("say", "end_pod", "rest_delete")
    )
    assert "sleep infinity" not in script
    client = RunPodClient()
    pod = client.create_pod(PodSpec(name="unsloth-nb-bootend", image="img", gpu_type_id=RTX_4090, docker_args="exec sleep 600"))
    key = runpod_emulator.pod(pod.id).api_key  # type: ignore[union-attr]
    env = {
        "PATH": "/usr/bin:/bin",
        "RUNPOD_POD_ID": pod.id,
        "RUNPOD_API_KEY": key,
        "RUNPOD_API_BASE_URL": runpod_emulator.api_base_url,
        "UNSLOTH_NB_WORKER_TERMINATE_RETRY_MAX": "1",
    }
    runpod_emulator.faults.update({"unreachable_from": "pods"})
    shell = subprocess.Popen(
        ["bash", "-c", functions + '\nend_pod "the worker exited with status 1"'],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(shell.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        runpod_emulator.wait_for(lambda: sum("could not end pod" in line for line in lines) >= 3, timeout=30)
        assert runpod_emulator.pod(pod.id) is not None
        runpod_emulator.faults.update({"unreachable_from": ""})
        runpod_emulator.wait_for(lambda: runpod_emulator.pod(pod.id) is None, timeout=15)
        asked = next(i for i, line in enumerate(lines) if "asked RunPod to end pod" in line)
        # It goes on asking (on RunPod the container dies with the pod; here the shell outlives it).
        runpod_emulator.wait_for(lambda: len(lines) >= asked + 3, timeout=15)
        assert shell.poll() is None, "the script exited: RunPod would restart the container"
    finally:
        runpod_emulator.faults.update({"unreachable_from": ""})
        shell.kill()
        shell.wait(timeout=10)
        if runpod_emulator.pod(pod.id) is not None:
            client.terminate_pod(pod.id, poll=0.05)
    assert "it bills until it ends" in lines[1], lines[:3]
