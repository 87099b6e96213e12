"""Image work (decoding checks, thumbnails, file copies) in a few threads: Pillow, hashlib and file I/O release the
GIL, so they overlap one another and the database work of the main thread."""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

IMAGE_THREADS = max(2, min(8, os.cpu_count() or 2))


def map_in_threads(
    function: Callable[[Item], Result], items: Iterable[Item], *, threads: int = IMAGE_THREADS
) -> Iterator[Result]:
    """function(item) for every item, in `threads` threads, yielded in the order of `items`.

    At most two calls per thread are queued ahead of the consumer, so memory stays bounded however many items there
    are. When the consumer stops early (or a call raises), what is still queued is dropped and the calls already
    running are waited for: nothing keeps running behind the caller's back (e.g. writing files it would clean up)."""
    with ThreadPoolExecutor(threads, thread_name_prefix="aicell-images") as pool:
        pending: deque[Future[Result]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) >= 2 * threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


@contextlib.contextmanager
def in_background(
    function: Callable[[Item], Result], items: Iterable[Item], *, threads: int = IMAGE_THREADS
) -> Iterator[Callable[[], list[Result]]]:
    """Start function(item) for every item in `threads` threads while the block runs; the block calls what it is
    given to wait for the results (in the order of `items`; the first call that raised raises). Leaving the block,
    calls not started yet are dropped and running ones are waited for."""
    with ThreadPoolExecutor(threads, thread_name_prefix="aicell-images") as pool:
        futures = [pool.submit(function, item) for item in items]
        try:
            yield lambda: [future.result() for future in futures]
        finally:
            for future in futures:
                future.cancel()
