"""``unsloth-nb autoload``: the notebook magics in every new kernel, without ``%load_ext`` after a restart.

A restarted kernel has forgotten its extensions, so ``%unsloth_jobs`` (the first thing one types to
find a job again) was unknown until ``%load_ext unsloth_nb`` ran. A pip package cannot make IPython
load it: IPython has no entry point for extensions, and the one config file it reads from the
environment (``<prefix>/etc/ipython/ipython_config.py``) is shared by every package that would write
it. What IPython does offer is a startup folder per profile, whose files run in every kernel (and
terminal IPython) before the first cell. This writes one file of ours there, which loads the
extension (a few milliseconds: no torch, nothing heavy) and does nothing in an environment without
unsloth_nb. ``unsloth-nb autoload off`` removes it; nothing else is touched.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["STARTUP_NAME", "autoload_enabled", "cmd_autoload", "disable_autoload", "enable_autoload", "startup_file"]

#: Our file in the profile's startup folder (IPython runs them in name order).
STARTUP_NAME = "50-unsloth-nb-autoload.py"

_STARTUP_CODE = """\
# Written by `unsloth-nb autoload on`: loads the unsloth_nb magics (%unsloth_train, %unsloth_jobs) in every
# new IPython kernel. `unsloth-nb autoload off` removes this file.
import importlib.util as _unsloth_nb_util

if _unsloth_nb_util.find_spec("unsloth_nb") is not None:  # nothing to load in an environment without it
    get_ipython().extension_manager.load_extension("unsloth_nb")  # noqa: F821 (IPython's startup namespace)
del _unsloth_nb_util
"""


def startup_file(profile: str = "default", ipython_dir: str | Path | None = None) -> Path:
    """Where the file goes: ``<IPYTHONDIR or ~/.ipython>/profile_<profile>/startup/50-unsloth-nb-autoload.py``."""
    if ipython_dir is None:
        ipython_dir = os.environ.get("IPYTHONDIR") or Path.home() / ".ipython"
    return Path(ipython_dir).expanduser() / f"profile_{profile}" / "startup" / STARTUP_NAME


def enable_autoload(profile: str = "default", ipython_dir: str | Path | None = None) -> Path:
    path = startup_file(profile, ipython_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_STARTUP_CODE)
    return path


def disable_autoload(profile: str = "default", ipython_dir: str | Path | None = None) -> bool:
    """Remove our startup file; False when there was none."""
    path = startup_file(profile, ipython_dir)
    if not path.is_file():
        return False
    path.unlink()
    return True


def autoload_enabled(profile: str = "default", ipython_dir: str | Path | None = None) -> bool:
    return startup_file(profile, ipython_dir).is_file()


def cmd_autoload(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="unsloth-nb autoload",
        description="Load the notebook magics (%unsloth_train, %unsloth_jobs) in every new IPython/Jupyter kernel, "
        "so a restarted kernel needs no %load_ext unsloth_nb.",
    )
    parser.add_argument("action", nargs="?", choices=("on", "off", "status"), default="status")
    parser.add_argument("--profile", default="default", help="IPython profile (default: default, the one kernels use)")
    options = parser.parse_args(argv)
    path = startup_file(options.profile)
    if options.action == "on":
        enable_autoload(options.profile)
        print(f"on: new kernels load the unsloth_nb magics ({path}); restart a running kernel to use it now")
    elif options.action == "off":
        removed = disable_autoload(options.profile)
        print(f"off: removed {path}" if removed else f"off: was not on ({path} does not exist)")
    else:
        state = "on" if path.is_file() else "off"
        print(f"{state}: {path}" + ("" if path.is_file() else "\n(unsloth-nb autoload on: load the magics in every new kernel)"))
    return 0
