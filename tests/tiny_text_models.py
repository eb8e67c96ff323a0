"""Moved to `luma_noise.fixtures.text_models` (tiny WordNet, tagger and translation models).

The old name stays for the tests and scripts that import `tiny_text_models`: importing it gives that
module itself, private names and monkeypatching included.
"""

import sys

from luma_noise.fixtures import text_models

sys.modules[__name__] = text_models
