"""Moved to `luma_noise.fixtures.marian` (random Marian translation models).

The old name stays for the tests and scripts that import `marian_models`: importing it gives that
module itself, private names and monkeypatching included.
"""

import sys

from luma_noise.fixtures import marian

sys.modules[__name__] = marian
