"""Moved to `luma_noise.fixtures.hub` (the loopback server with the Hub's rate limits).

The old name stays for the tests and scripts that import `hub_server`: importing it gives that
module itself, private names and monkeypatching included.
"""

import sys

from luma_noise.fixtures import hub

sys.modules[__name__] = hub
