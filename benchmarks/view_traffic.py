"""What one job's notebook view sends to the page over a whole run (issue 16: 962 messages / 5.74 MB).

Trains a real 20-step job in this process (the tiny model by default, SmolLM2-135M with
``--smollm2``) while its :class:`~unsloth_nb.ui.view.JobView` is displayed on a measuring
comm, the boundary where a kernel puts widget messages on the wire, and counts every comm
message and its serialised size (Jupyter envelope included). plotly.js (pushed once per
page) is reported on its own line, because a second chart on the same page does not send it.

    .venv/bin/python benchmarks/view_traffic.py            # tiny model, 20 steps
    .venv/bin/python benchmarks/view_traffic.py --smollm2  # the issue's SmolLM2 run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import DEMO_DATASET, offline, scratch_dir, tiny_model

#: Targets: far under the issue's measurement of the same run before the change.
MAX_MESSAGES = 300
MAX_BYTES_WITHOUT_PLOTLY = 500_000


class MeasuringComm:
    kernel = "benchmark"

    def __init__(self, **kwargs: Any) -> None:
        from jupyter_client.session import Session

        self.comm_id = kwargs.get("comm_id") or uuid.uuid4().hex
        self.session = Session(key=b"benchmark-key")
        self.parent = self.session.msg("execute_request", content={"code": "%unsloth_train"})
        self.sent: list[tuple[str, int]] = []
        state = (kwargs.get("data") or {}).get("state") or {}
        self.model = str(state.get("_model_name", "?")).removesuffix("Model")
        self.updates: Counter[str] = Counter()
        self.update_bytes: Counter[str] = Counter()
        self.sent.append(("open", self._size({"state": kwargs.get("data", {})}, None)))

    def _size(self, data: Any, buffers: Any) -> int:
        message = self.session.msg("comm_msg", content={"comm_id": self.comm_id, "data": data}, parent=self.parent)
        return sum(map(len, self.session.serialize(message))) + sum(len(memoryview(b)) for b in buffers or [])

    def on_msg(self, callback: Any) -> None:
        self.handler = callback

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        kind = "plotly.js" if isinstance(data, dict) and data.get("content", {}).get("type") == "plotly" else "update"
        size = self._size(data, buffers)
        if isinstance(data, dict):
            keys = ",".join(sorted((data.get("state") or {}).keys()) or [str((data.get("content") or {}).get("type", "?"))])
            self.updates[keys] += 1
            self.update_bytes[keys] += size
        self.sent.append((kind, size))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smollm2", action="store_true", help="train SmolLM2-135M-Instruct (as the issue did)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--breakdown", action="store_true", help="list the widgets opened and what each update changed")
    args = parser.parse_args()
    offline()
    import comm

    opened: list[MeasuringComm] = []

    def create_comm(**kwargs: Any) -> MeasuringComm:
        opened.append(MeasuringComm(**kwargs))
        return opened[-1]

    comm.create_comm = create_comm
    import unsloth_nb
    from unsloth_nb.ui.view import JobView

    if args.smollm2:
        from unsloth_nb.models import smollm2_path

        model, seq = str(smollm2_path()), 256
    else:
        model, seq = str(tiny_model(scratch_dir("view-traffic"))), 512
    started = time.monotonic()
    job = unsloth_nb.train(
        model=model,
        dataset=str(DEMO_DATASET),
        train__max_steps=args.steps,
        train__max_seq_length=seq,
        train__batch_size=4,
        train__grad_accum=1,
        train__lr=1e-3,
        placement="local",
    )
    view = JobView(job)
    view.widget  # noqa: B018  (displayed: the widgets exist and the flusher runs)
    job.wait()
    if view._flusher is not None:
        view._flusher.join(timeout=30)
    took = time.monotonic() - started
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for c in opened:
        for kind, size in c.sent:
            counts[kind] += 1
            sizes[kind] += size
    total_msgs = counts["open"] + counts["update"]
    total_bytes = sizes["open"] + sizes["update"]
    print(f"| job view, {'SmolLM2-135M' if args.smollm2 else 'tiny model'}, {args.steps} steps ({took:.0f} s) | value | target |")
    print("|---|---|---|")
    print(f"| comm messages (widget opens + updates) | {total_msgs} | ≤ {MAX_MESSAGES} |")
    print(f"| bytes on the wire without plotly.js | {total_bytes / 1e3:.0f} kB | ≤ {MAX_BYTES_WITHOUT_PLOTLY / 1e3:.0f} kB |")
    print(f"| plotly.js, once per page | {counts['plotly.js']} message, {sizes['plotly.js'] / 1e6:.2f} MB | – |")
    print(f"| widgets opened | {counts['open']} | – |")
    if args.breakdown:
        opens = Counter(c.model for c in opened)
        print("opened: " + ", ".join(f"{name} {n}" for name, n in opens.most_common()))
        updates: Counter[str] = Counter()
        update_bytes: Counter[str] = Counter()
        for c in opened:
            for keys, n in c.updates.items():
                updates[f"{c.model}[{keys}]"] += n
                update_bytes[f"{c.model}[{keys}]"] += c.update_bytes[keys]
        print(
            f"opens: {sizes['open'] / 1e3:.0f} kB; updates: "
            + ", ".join(f"{name} {n} ({update_bytes[name] / 1e3:.0f} kB)" for name, n in updates.most_common())
        )
    ok = total_msgs <= MAX_MESSAGES and total_bytes <= MAX_BYTES_WITHOUT_PLOTLY
    print(
        "result: " + json.dumps({"messages": total_msgs, "bytes": total_bytes, "plotly_js_bytes": sizes["plotly.js"], "ok": ok})
    )
    view.close()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
