"""Work done ahead of its consumer in a background thread."""

import collections
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator


def ahead(function: Callable, items: Iterable, depth: int = 2) -> Iterator:
    """function(item) for each item, in order, computed in one background thread up to `depth`
    items ahead of the caller.

    The builder's generator uses it so that reading the next blocks' wavs (and noising and
    PNG-encoding their images, when a config noises images) overlaps `datasets` encoding and
    writing the current block. One thread: the items are computed one after another, as without
    it (noise objects are not thread-safe). Exceptions surface at the item that raised; closing
    the generator cancels what is queued.
    """
    pending = collections.deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="luma-ahead") as pool:
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) > depth:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
