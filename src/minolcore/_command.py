"""The ``minolcore`` command's own process: its set-up before numpy is imported."""

from __future__ import annotations

import os
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``minolcore`` command (:func:`minolcore.cli.main`); returns its exit code."""
    # minolcore makes no BLAS calls, and OpenBLAS starts a thread per core when numpy is
    # imported, which spins for about 0.2 s of CPU. The command owns its process, so it asks
    # for none; a setting in the environment wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from minolcore.cli import main as run  # noqa: PLC0415  (numpy is imported only now)

    return run(argv)
