"""Build hook: the C core is a cffi out-of-line API module, optional so that an
install without a C compiler still succeeds with the pure-Python reference."""

from setuptools import setup

setup(cffi_modules=["csrc/build_ffi.py:ffibuilder"])
