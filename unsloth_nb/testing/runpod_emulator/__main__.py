"""``python -m unsloth_nb.testing.runpod_emulator``: same as ``unsloth-nb runpod emulator``."""

from __future__ import annotations

import sys

from unsloth_nb.testing.runpod_emulator.cli import main

sys.exit(main())
