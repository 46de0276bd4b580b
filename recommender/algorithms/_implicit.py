"""Shared plumbing for the `implicit` package: threads, BLAS and progress bars."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """implicit runs its own thread pool (num_threads); BLAS threads on top of it
    oversubscribe the cores (implicit warns about it), so BLAS is held to one thread while
    implicit trains. Progress bars are turned off by each caller (show_progress=False)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def default_threads() -> int:
    """implicit's num_threads: 0 means every core."""
    return int(os.environ.get("RECOMMENDER_THREADS", "0"))
