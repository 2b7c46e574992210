"""``SimpleThreadPool``: the official SDK's tiny task pool, same interface and result shape.

SDK scripts (the "download a COS directory" recipe) do::

    pool = SimpleThreadPool()
    for key in keys:
        pool.add_task(client.download_file, bucket, key, path)
    pool.wait_completion()
    result = pool.get_result()   # {'success_all': bool, 'detail': [(ok, failed, results), ...]}

and keep working with ``from cosfast.cos_threadpool import SimpleThreadPool``. What is kept from
``qcloud_cos.cos_threadpool``: workers start on the first ``add_task`` (``num_threads`` of them),
``num_queue`` bounds the task queue (0 = unbounded, ``add_task`` blocks when full), a task that
raises is logged and counted as failed and its message (``_message``, else ``message``, else
``'meet some exception'``) takes the place of its return value, ``get_result`` reports one
``(succeeded, failed, results)`` tuple per worker.

What differs, on purpose:
- ``get_result`` before ``wait_completion`` raises ``PoolNotFinishedError`` (an AssertionError,
  as the SDK's bare ``assert`` is) with a message saying what to call, and it still works under
  ``python -O``;
- a script that forgets ``wait_completion`` does not hang forever at exit: idle workers notice
  the main thread has ended and leave once every queued task has run (the SDK's workers block in
  ``Queue.get`` for ever);
- after ``wait_completion`` the pool can be used again (a new round starts new workers); the
  SDK's second ``wait_completion`` hangs because its stop markers are never marked done.

For downloading many objects, ``CosS3Client.download_dir`` is much faster than this pool: all
objects share one set of kept-alive connections and one transfer engine instead of one thread
per object.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable, Optional

__all__ = ["SimpleThreadPool", "PoolNotFinishedError"]

logger = logging.getLogger(__name__)

# How often an idle worker checks whether the main thread is gone.
_IDLE_CHECK_SECONDS = 0.5
_UNKNOWN_FAILURE = "meet some exception"

_Task = tuple[Callable[..., Any], tuple, dict]


class PoolNotFinishedError(AssertionError):
    """get_result() was called before wait_completion()."""


def _failure_message(exc: BaseException) -> Any:
    """What the SDK stores in place of a failed task's result: the exception's message."""
    for attribute in ("_message", "message"):
        message = getattr(exc, attribute, None)
        if message:
            return message
    return _UNKNOWN_FAILURE


class _Worker(threading.Thread):
    """Runs tasks from the shared queue until it takes the stop marker (None)."""

    def __init__(self, tasks: "queue.Queue[Optional[_Task]]") -> None:
        super().__init__(name="cosfast-pool-worker")
        self._tasks = tasks
        self.succeeded = 0
        self.failed = 0
        self.results: list[Any] = []

    def run(self) -> None:
        while True:
            task = self._next_task()
            if task is None:
                return
            func, args, kwargs = task
            try:
                self.results.append(func(*args, **kwargs))
                self.succeeded += 1
            except Exception as exc:  # the SDK's contract: a failed task is counted, not raised
                logger.error(str(exc))
                self.failed += 1
                self.results.append(_failure_message(exc))
            finally:
                self._tasks.task_done()

    def _next_task(self) -> Optional[_Task]:
        while True:
            try:
                task = self._tasks.get(timeout=_IDLE_CHECK_SECONDS)
            except queue.Empty:
                if not threading.main_thread().is_alive():
                    return None  # nobody can add work or wait for it any more
                continue
            if task is None:
                # The stop marker counts as a queue item: without this the next round's
                # wait_completion() would wait for it for ever (the SDK's pool does).
                self._tasks.task_done()
            return task

    def result(self) -> tuple[int, int, list[Any]]:
        return self.succeeded, self.failed, self.results


class SimpleThreadPool:
    """Runs ``add_task`` calls on ``num_threads`` worker threads; see the module docstring."""

    def __init__(self, num_threads: int = 5, num_queue: int = 0) -> None:
        if num_threads < 1:
            raise ValueError(f"num_threads must be at least 1, got {num_threads}")
        self._num_threads = num_threads
        self._tasks: "queue.Queue[Optional[_Task]]" = queue.Queue(num_queue)
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._active = False
        self._finished = False

    def add_task(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queues ``func(*args, **kwargs)``; starts the workers on the first call of a round."""
        with self._lock:
            if not self._active:
                self._workers = [_Worker(self._tasks) for _ in range(self._num_threads)]
                for worker in self._workers:
                    worker.start()
                self._active = True
        self._tasks.put((func, args, kwargs))

    def wait_completion(self) -> None:
        """Blocks until every queued task has run, then stops the workers."""
        self._tasks.join()
        with self._lock:
            if self._active:
                for _ in self._workers:
                    self._tasks.put(None)
                for worker in self._workers:
                    worker.join()
            self._active = False
            self._finished = True

    def get_result(self) -> dict:
        """``{'success_all': no task failed, 'detail': [(succeeded, failed, results) per worker]}``."""
        if not self._finished:
            raise PoolNotFinishedError("call wait_completion() before get_result()")
        detail = [worker.result() for worker in self._workers]
        return {"success_all": all(failed == 0 for _, failed, _ in detail), "detail": detail}
