"""``python -m minolcore``: the same as the ``minolcore`` command."""

import sys

from minolcore._command import main

sys.exit(main())
