"""``python -m tft_pipeline``: see ``tft_pipeline.cli``."""

import sys

from tft_pipeline.cli import main

sys.exit(main())
