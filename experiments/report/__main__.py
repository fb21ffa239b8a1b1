"""``python -m experiments.report ROOT... --out DIR``: the same as ``reprl report``."""

import sys

from experiments.cli import main

sys.exit(main(["report", *sys.argv[1:]]))
