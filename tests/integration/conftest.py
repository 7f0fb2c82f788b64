"""Settings for the integration tests (the tiny model and the Super Bowl rows come from tests/conftest.py)."""

from __future__ import annotations

import os

# torch's OpenMP threads spin while they wait for work. On a busy 2-core CI runner (other
# test processes, kernels, a browser) spinning threads starve each other: SmolLM2 steps took
# 10-48 s instead of 1.5 s. Sleeping waiters avoid that; read once, when torch first loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
