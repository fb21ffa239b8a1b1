"""Test-wide settings."""

import atexit
import os
import shutil
import tempfile

# Before torch is imported: OpenMP's default busy-waiting makes torch crawl (25x measured) when
# the two cores are shared with another process, as on a busy CI runner; passive waiting costs
# 10-40% on an idle machine, which the tests can afford.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# SB3's learn() without a TensorBoard folder still makes an empty /tmp/SB3-<date> directory on
# every call (stable_baselines3.common.logger.configure); the suite's thousand calls make one.
_SB3_LOGS = tempfile.mkdtemp(prefix="reprl-tests-sb3-")
os.environ["SB3_LOGDIR"] = _SB3_LOGS
atexit.register(shutil.rmtree, _SB3_LOGS, ignore_errors=True)
