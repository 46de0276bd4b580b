"""Shared plumbing for the `implicit` package: threads, BLAS and progress bars."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

# implicit runs its own thread pool; BLAS threads on top of it oversubscribe the cores and
# implicit warns about it, so BLAS is held to one thread while it trains.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def default_threads() -> int:
    """implicit's num_threads: 0 means every core."""
    return int(os.environ.get("RECOMMENDER_THREADS", "0"))
