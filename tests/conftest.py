"""Test-wide settings."""

import os

# Before torch is imported: OpenMP's default busy-waiting makes torch crawl (25x measured) when
# the two cores are shared with another process, as on a busy CI runner; passive waiting costs
# 10-40% on an idle machine, which the tests can afford.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
