"""``python -m unsloth_nb.worker``: see :mod:`unsloth_nb.worker`."""

from __future__ import annotations

import sys

from unsloth_nb.worker.main import main

if __name__ == "__main__":
    sys.exit(main())
