"""`python -m changeover.cli`: the same entry as the `changeover` console script."""

import sys

from changeover.cli.entry import main

sys.exit(main())
