"""Moved to `luma_noise.fixtures.planted` (checkpoints with planted features).

The old name stays for the tests and scripts that import `planted_models`: importing it gives that
module itself, private names and monkeypatching included.
"""

import sys

from luma_noise.fixtures import planted

sys.modules[__name__] = planted
