"""``python -m namcore.cli``."""

import sys

from . import main

sys.exit(main())
