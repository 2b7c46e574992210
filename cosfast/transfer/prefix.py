"""Download a prefix: list it, place each key, download the objects in this process or in worker
processes (cosfast.transfer.batch_workers), and sum up. The pieces are in cosfast.transfer.batch."""
from __future__ import annotations

import time
from typing import Optional

from cosfast import partwriter
from cosfast.cos_exception import CosClientError
from cosfast.transfer import batch_workers
from cosfast.transfer.batch import (Batch, BatchOptions, BatchSummary, ListPage, Lister, Reporter, RequestFor,
                                    Selector, listed_source)
from cosfast.transfer.engine import TransferEngine

__all__ = ["download_prefix"]


def download_prefix(*, bucket: str, prefix: str, local_dir: str, list_page: ListPage, request_for: RequestFor,
                    options: BatchOptions, engine: Optional[TransferEngine] = None) -> BatchSummary:
    """Downloads every listed object under ``prefix`` into ``local_dir``; see the module docstring.

    Raises only for the run as a whole (the listing failed, an interrupt); per-object failures are
    in the summary. ``engine``: a caller's engine to reuse, else one is made for this run (or one
    per worker process, see cosfast.transfer.batch_workers)."""
    start = time.monotonic()
    reporter = Reporter(options)
    selector = Selector(prefix, local_dir, options, reporter)
    try:
        selector.tree.make_root()
    except (FileExistsError, NotADirectoryError):
        raise CosClientError(f"LocalDir {local_dir!r} is not a folder: a file is in its place") from None
    # The first page is listed before any thread starts: worker processes are forked from a
    # process with one thread, and how many (if any) depends on how many objects there are.
    first_page = list_page("")
    lister = Lister(list_page, options.queue_pages, first_page)
    processes = 0 if engine is not None else batch_workers.process_count(options, first_page)
    # Workers are forked before the lister thread starts.
    pool = batch_workers.WorkerPool.fork(processes, bucket=bucket, request_for=request_for, options=options) \
        if processes else None
    source = listed_source(lister, selector)
    try:
        if pool is not None:
            # The lister starts once every worker has its first objects (see Lister).
            pool.run(source, reporter, started=lister.start)
        else:
            lister.start()
            _run_in_process(Batch(bucket=bucket, request_for=request_for, options=options, source=source,
                                  reporter=reporter), options, engine)
    finally:
        lister.stop()
        partwriter.release_recycled()
    if lister.error is not None:
        raise lister.error
    reporter.summary.seconds = time.monotonic() - start
    return reporter.summary


def _run_in_process(batch: Batch, options: BatchOptions, engine: Optional[TransferEngine]) -> None:
    own_engine = engine is None
    if engine is None:
        engine = TransferEngine(options.download.engine_options())
    try:
        engine.run(batch.jobs(), on_progress=batch.on_bytes, on_tick=batch.tick)
    except BaseException as exc:
        batch.abandon_all(exc)
        raise
    finally:
        if own_engine:
            engine.close()
