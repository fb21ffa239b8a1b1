"""Test-wide settings."""

import os

# Before torch is imported: OpenMP busy-waiting makes torch crawl when the two cores are shared
# with another process (see experiments/cli.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
