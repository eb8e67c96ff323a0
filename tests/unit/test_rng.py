"""derive_rng: numpy scalars and the Python values they hold give the same stream; plain parts
keep the streams every generated example was drawn from."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from luma_noise.rng import derive_rng


# numpy strings cannot end in NUL (np.str_("a\0") == "a"), so such words have no numpy twin
_WORDS = st.text(max_size=8).filter(lambda w: not w.endswith("\0"))


@given(st.integers(0, 2**31 - 1), st.sampled_from([np.int32, np.int64, np.uint32, np.uint64]), _WORDS)
def test_numpy_scalars_draw_the_same_stream_as_python_values(row, kind, word):
    plain = derive_rng(42, "noise", word, row).integers(2**62, size=4)
    assert np.array_equal(derive_rng(np.int64(42), "noise", np.str_(word), kind(row)).integers(2**62, size=4), plain)


def test_plain_parts_keep_their_streams():
    """Pinned: a change here changes every generated example (bump the builder's _VERSION)."""
    assert derive_rng(42, "noise", "test", 1234, "image").integers(2**62) == 249010059694065318
    assert derive_rng(42, "noise", "test", 1234, "image").integers(2**62) != derive_rng(42, "noise", "test", 1235, "image").integers(2**62)
