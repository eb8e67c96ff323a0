"""Randomness for LUMA: one explicit generator per purpose, never global state.

A generator is derived from the config's seed and a purpose path such as
("align", "train", "horse", "audio") or ("noise", "test", 1234, "image"). The same
path always gives the same stream, whatever else ran before, so results do not
depend on call order, sharding (`num_proc`) or streaming.
"""

import hashlib

import numpy as np


def _word(part) -> int:
    # numpy scalars as the Python values they hold: np.int64(5) and 5 give the same stream
    # (repr differs: "np.int64(5)"); plain int and str parts hash as before, so streams are unchanged.
    if isinstance(part, np.generic):
        part = part.item()
    digest = hashlib.blake2b(repr(part).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def derive_rng(seed: int, *purpose) -> np.random.Generator:
    """Return a `numpy.random.Generator` for `seed` and a purpose path of str/int parts
    (numpy integers, strings and bools count as the Python values they hold)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(_word, purpose)]))
