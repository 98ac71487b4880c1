"""Allow ``python -m esa_scheduler``."""

import sys

from esa_scheduler.cli import main

sys.exit(main())
