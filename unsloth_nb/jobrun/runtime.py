"""The private event loop that job controllers run on.

A Jupyter kernel has a running loop, but it pauses whenever a cell blocks; a
plain IPython shell or a script has none between statements. Running every
controller on one loop in a daemon thread makes jobs progress the same way in
all of them (see the jupyter reference, "Async in the kernel"), without
nest_asyncio.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import sys
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def controller_loop() -> asyncio.AbstractEventLoop:
    """The shared controller loop, started on first use."""
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed() or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            _thread = threading.Thread(target=serve, name="unsloth-nb-controller", daemon=True)
            _thread.start()
            ready.wait()
            _loop = loop
        return _loop


def submit(coro: Coroutine[Any, Any, T], context: contextvars.Context | None = None) -> concurrent.futures.Future[T]:
    """Run ``coro`` on the controller loop, inside ``context`` when given.

    Passing the caller's context keeps a notebook cell's output routing (ipykernel 7
    keys it on contextvars) for everything the job prints.
    """
    loop = controller_loop()
    result: concurrent.futures.Future[T] = concurrent.futures.Future()

    def start() -> None:
        if context is None:
            task = loop.create_task(coro)
        elif sys.version_info >= (3, 11):
            task = loop.create_task(coro, context=context)
        else:  # no context= before 3.11: a task copies the context it is created in
            task = context.run(loop.create_task, coro)

        def finish(done: asyncio.Task[T]) -> None:
            if result.cancelled():
                return
            if done.cancelled():
                result.cancel()
            elif done.exception() is not None:
                result.set_exception(done.exception())
            else:
                result.set_result(done.result())

        task.add_done_callback(finish)

    loop.call_soon_threadsafe(start)
    return result


def run_in_thread(fn: Any, *args: Any, name: str, context: contextvars.Context | None = None) -> asyncio.Future[Any]:
    """Run a blocking ``fn`` in a new daemon thread and await its result from the loop.

    Not the default executor: its threads are joined at interpreter exit, which would
    make a kernel shutdown wait for a training run to finish.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    # A copy: the caller's task may still be running inside ``context``, and one Context
    # cannot be entered by two threads at once ("cannot enter context: ... already entered").
    ctx = context.copy() if context is not None else contextvars.copy_context()

    def body() -> None:
        try:
            value = ctx.run(fn, *args)
        except BaseException as exc:  # delivered to the awaiting coroutine
            loop.call_soon_threadsafe(_set_exception, future, exc)
        else:
            loop.call_soon_threadsafe(_set_result, future, value)

    threading.Thread(target=body, name=name, daemon=True).start()
    return future


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
