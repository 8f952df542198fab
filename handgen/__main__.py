"""`python -m handgen ...`: see handgen.cli."""

import sys

from .cli import main

sys.exit(main())
