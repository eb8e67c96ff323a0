"""Moved to `luma_noise.fixtures.pickles` (Python 2 pickles).

The old name stays for the tests and scripts that import `py2_pickle`: importing it gives that
module itself, private names and monkeypatching included.
"""

import sys

from luma_noise.fixtures import pickles

sys.modules[__name__] = pickles
