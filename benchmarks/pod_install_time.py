"""Paid seconds before training on a real pod, for the default image: from the install plan, image pull excluded.

The pod's stage 0 installs what the image lacks with constraints that keep its torch.
This resolves that exact install with pip's dry run against PyPI (as
``tests/integration/test_pod_install.py`` does), takes out what the image already has
(torch and torchvision with everything they depend on, a lower bound on what a
``runpod/pytorch`` image ships), asks the index for the size of each remaining wheel
(one HEAD request per file: nothing is downloaded), and turns that into seconds:

- resolve: pip's own resolution against the index, measured here (the dry run's time);
- download: the wheels' bytes at a stated bandwidth (--mbps, default 400 Mbit/s, a
  conservative figure for a data-centre pod fetching from PyPI's CDN);
- install: unpacking and byte-compiling, at a stated rate (--unpack-mb-s, default
  20 MB/s of wheel: a CPU-torch unsloth install of 77 packages, a 3.0 GB venv, took about
  50 s on a 2-core machine from local wheels, i.e. ~60 MB/s installed, ~20 MB/s of wheel);
- plus what the boot does besides: stage 0's image check, the package upload and the
  worker's start (measured on the emulator: see benchmarks/runpod_overhead.py).

The model download and load come after the worker is ready and depend on the model;
they are not in this figure. This is the one benchmark that reads the package index.

    .venv/bin/python benchmarks/pod_install_time.py
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Row, finish, print_table

#: Stage 0's image check, the ~140 kB package over the proxy, the worker's start: measured on the emulator.
BOOT_OTHER_S = 5.0


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def image_has(install: list[dict[str, Any]]) -> set[str]:
    """torch, torchvision and everything they require (transitively) within the install set."""
    by_name = {_normal(item["metadata"]["name"]): item for item in install}
    have: set[str] = set()
    todo = ["torch", "torchvision"]
    while todo:
        name = todo.pop()
        if name in have or name not in by_name:
            continue
        have.add(name)
        for requirement in by_name[name]["metadata"].get("requires_dist") or []:
            if "extra ==" in requirement:
                continue
            head = requirement.split(";")[0].strip()
            for stop in "<>=!~[( ":
                head = head.split(stop)[0]
            todo.append(_normal(head))
    return have


def wheel_size(url: str) -> int:
    request = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(request, timeout=60) as response:
        return int(response.headers.get("Content-Length") or 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", help="image to plan for (default: the config's default image)")
    parser.add_argument("--mbps", type=float, default=400.0, help="download bandwidth in Mbit/s (default 400)")
    parser.add_argument("--unpack-mb-s", type=float, default=20.0, help="install rate in MB of wheel per second (default 20)")
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args(argv)

    from unsloth_nb.testing.install_plan import resolve_install

    started = time.monotonic()
    plan = resolve_install(args.image)
    resolve_s = time.monotonic() - started
    have = image_has(plan.install)
    fetched = [item for item in plan.install if _normal(item["metadata"]["name"]) not in have]
    urls = [item["download_info"]["url"] for item in fetched]
    with ThreadPoolExecutor(8) as pool:
        sizes = list(pool.map(wheel_size, urls))
    total = sum(sizes)
    download_s = total * 8 / (args.mbps * 1e6)
    install_s = total / (args.unpack_mb_s * 1e6)
    paid = resolve_s + download_s + install_s + BOOT_OTHER_S
    biggest = sorted(zip(sizes, (i["metadata"]["name"] for i in fetched), strict=True), reverse=True)[:5]
    rows = [
        Row(["image", f"{plan.image} (torch {plan.image_torch}, python {plan.python})", "-"]),
        Row(["constraints", ", ".join(plan.constraints), "-"]),
        Row(
            ["torch after the install", f"{plan.version('torch')} (image's: {plan.image_torch})", "unchanged"],
            ok=plan.version("torch") == plan.image_torch,
        ),
        Row(["packages the install adds", f"{len(fetched)} of {len(plan.install)} resolved ({len(have)} in the image)", "-"]),
        Row(
            [
                "wheel bytes to download",
                f"{total / 1e6:,.0f} MB; biggest: " + ", ".join(f"{n} {s / 1e6:.0f} MB" for s, n in biggest),
                "-",
            ]
        ),
        Row(["resolve (measured here)", f"{resolve_s:.0f} s", "-"]),
        Row(["download", f"{download_s:.0f} s at {args.mbps:g} Mbit/s", "-"]),
        Row(["install", f"{install_s:.0f} s at {args.unpack_mb_s:g} MB/s", "-"]),
        Row(["paid seconds before the worker is ready (image pull excluded)", f"~{paid:.0f} s", "-"]),
    ]
    rows = print_table(
        "The pod's install for the default image, from pip's dry run against PyPI",
        ["figure", "value", "target"],
        rows,
        note=f"Plus ~{BOOT_OTHER_S:g} s of boot besides the install (stage 0, package upload, worker start). "
        "The model's download and load follow and depend on the model.",
    )
    return finish(rows, args.strict)


if __name__ == "__main__":
    raise SystemExit(main())
