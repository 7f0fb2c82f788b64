"""The pod's pip install keeps the image's torch: resolved against the package index, offline of RunPod.

Unsloth asks for an unpinned xformers, and current xformers wants a newer torch than
a RunPod image ships: unconstrained, pip would swap the image's CUDA 12.8 torch for
PyPI's newest (CUDA 13, driver >= 580), and the GPU would vanish on most hosts. This
resolves the boot script's exact requirements and constraints, for the default
image's torch, Python and platform, with pip's dry run against PyPI (the only test
that leaves loopback: CI can reach the package index; ``UNSLOTH_NB_OFFLINE_TESTS=1``
skips it on a machine that cannot).
"""

from __future__ import annotations

import os

import pytest

from unsloth_nb.config import RunPodConfig
from unsloth_nb.testing.install_plan import resolve_install

pytestmark = [pytest.mark.network, pytest.mark.timeout(600)]


@pytest.mark.skipif(os.environ.get("UNSLOTH_NB_OFFLINE_TESTS") == "1", reason="UNSLOTH_NB_OFFLINE_TESTS=1: no package index")
def test_the_default_images_torch_is_not_replaced_by_the_pod_install() -> None:
    plan = resolve_install(RunPodConfig().image)

    assert plan.version("torch") == plan.image_torch == "2.9.1"
    assert plan.version("torchvision") == "0.24.1"
    assert plan.version("xformers") == "0.0.33.post2"
    assert plan.version("unsloth") and plan.version("trl") and plan.version("transformers")
    # torch 2.9.1's own CUDA 12 libraries, never the CUDA 13 stack a newer torch would bring.
    names = plan.names()
    assert "nvidia-cublas-cu12" in names and not [n for n in names if n.endswith("-cu13") or n.startswith("nvidia-cuda-toolkit")]
