"""Version of the package and of the C core's interface, stamped into the extension."""

__version__ = "0.1.0"
# Raise whenever a C signature or struct layout changes: an extension built from older
# sources then no longer matches and is noticed at import.
NATIVE_ABI = 15
NATIVE_STAMP = f"{__version__}+abi{NATIVE_ABI}"
