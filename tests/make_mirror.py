"""Moved to `luma_noise.fixtures.mirror` (the miniature upstream mirror).

The old name stays for the tests and scripts that import `make_mirror`: importing it gives that
module itself, private names and monkeypatching included.
"""

import sys

from luma_noise.fixtures import mirror

if __name__ == "__main__":  # python tests/make_mirror.py OUT_DIR [--scale S]: the same command line
    sys.exit(mirror.main())
sys.modules[__name__] = mirror
