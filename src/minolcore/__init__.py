"""minolcore: the metering data path from gateway traffic to trustworthy readings.

Wireless M-Bus / OMS and LoRaWAN telegrams in; validated, deduplicated, decrypted,
decoded readings out, assigned to buildings and units, with access only on a legal basis.
"""

from __future__ import annotations

import logging

from minolcore._native import BACKEND
from minolcore._version import __version__
from minolcore.errors import MinolcoreError

__all__ = ["BACKEND", "MinolcoreError", "__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
