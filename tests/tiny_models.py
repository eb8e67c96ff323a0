"""Moved to `luma_noise.fixtures.models` (tiny random checkpoints).

The old name stays for the tests and scripts that import `tiny_models`: importing it gives that
module itself, private names and monkeypatching included.
"""

import sys

from luma_noise.fixtures import models

sys.modules[__name__] = models
