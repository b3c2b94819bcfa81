"""``python -m minolcore``: the same as the ``minolcore`` command."""

import sys

from minolcore.cli import main

sys.exit(main())
