"""``python -m course_utils``: the command line lives in course_utils.tooling.cli."""

import sys
import warnings

from .tooling.cli import main

if __name__ == "__main__":
    warnings.simplefilter("default")
    sys.exit(main())
