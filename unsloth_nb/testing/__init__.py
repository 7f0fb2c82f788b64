"""Test helpers that ship with the package: a tiny-model factory (and, elsewhere, a RunPod emulator).

Tests, tutorials and users without a GPU or a Hub connection use these to exercise the
real training path end to end in seconds.
"""

from __future__ import annotations

from unsloth_nb.testing.tiny_model import build_tiny_model

__all__ = ["build_tiny_model"]
