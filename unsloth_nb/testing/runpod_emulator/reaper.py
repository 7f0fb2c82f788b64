"""Pods die with the emulator, however it dies: a watcher process that kills every pod's process group.

Each emulated container runs in a process group (a session) of its own, so stopping a pod can kill
everything it started. That needs a living emulator. When the emulator is SIGKILLed, or the test
process running it is, nothing would kill the groups, and pods (``sleep 600``, a worker training on
the CPU) would linger as orphans.

So one small watcher process per emulator process holds the read end of a pipe and a list of the
live pod groups. The emulator writes ``+<pgid>`` when a container starts and ``-<pgid>`` once its
group is dead. When the pipe reaches end of file (the kernel closes it when the emulator exits, by
any signal) the watcher SIGKILLs every group still listed, then exits.

Why not ``prctl(PR_SET_PDEATHSIG)`` in each container: it reaches only the container's first process,
not the worker its shell started, and it fires when the *thread* that spawned the container ends, not
the process. The watcher needs neither, and works on any POSIX system. It runs in a session of its own,
so a Ctrl-C or a kill aimed at the emulator's process group does not take it down first.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from typing import IO

#: The watcher, run as ``python -I -S -c``: standard library only, so it starts in a few milliseconds.
WATCHER_CODE = """
import os, signal, sys

def stop(signum, frame):
    raise SystemExit(0)

signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups = set()
try:
    for line in sys.stdin:
        line = line.strip()
        if line[:1] in ("+", "-") and line[1:].isdigit():
            (groups.add if line[0] == "+" else groups.discard)(int(line[1:]))
finally:
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
"""


class GroupReaper:
    """The emulator's side of the watcher: started on first use, one per process, shared by every emulator."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pipe: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._failed = False

    def watch(self, pgid: int) -> None:
        """From now on, group ``pgid`` is killed if this process dies before calling :meth:`release`."""
        self._send(f"+{pgid}\n")

    def release(self, pgid: int) -> None:
        """Group ``pgid`` is gone (killed or exited); the watcher forgets it, since its number may be reused."""
        self._send(f"-{pgid}\n")

    @property
    def pid(self) -> int | None:
        """The watcher's process id, once it runs (tests check it is alive)."""
        return self._process.pid if self._process is not None else None

    def _send(self, line: str) -> None:
        with self._lock:
            pipe = self._ensure_started()
            if pipe is None:
                return
            try:
                pipe.write(line.encode())
                pipe.flush()
            except OSError:  # the watcher died (killed by hand); pods still die on stop, just not on SIGKILL
                self._failed, self._pipe = True, None

    def _ensure_started(self) -> IO[bytes] | None:
        if self._pipe is not None or self._failed:
            return self._pipe
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", WATCHER_CODE],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError:
            # No watcher (an odd platform): pods are still killed on every orderly stop.
            self._failed = True
            return None
        self._pipe = self._process.stdin
        return self._pipe

    def close(self) -> None:
        """End the watcher now (it kills any group still listed). Used by tests; exit does the same."""
        with self._lock:
            pipe, process = self._pipe, self._process
            self._pipe, self._process = None, None
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)


#: The process's one watcher.
REAPER = GroupReaper()
