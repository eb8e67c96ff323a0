"""Work done ahead of its consumer in a background thread."""

import collections
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator


def ahead(function: Callable, items: Iterable, threads: int = 1, depth: int = 2) -> Iterator:
    """function(item) for each item, in order, computed in `threads` background threads up to
    `depth` items ahead of the caller.

    The builder's generator uses it so that reading wavs and PNG encoding (zlib and Pillow's
    encoder release the GIL) run on a second core while `datasets` encodes and writes the
    previous block. With one thread the items are computed one after another, as without it
    (for work that is not thread-safe).
    Exceptions surface at the item that raised; closing the generator cancels what is queued.
    """
    pending = collections.deque()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="luma-ahead") as pool:
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) > depth + threads - 1:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
