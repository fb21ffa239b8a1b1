"""``python -m experiments.report``: see :func:`experiments.report.build.main`."""

import sys

from experiments.report.build import main

sys.exit(main())
