"""Where a command-line run finds its audit key: never in the database whose log it protects.

Order: ``MINOLCORE_AUDIT_KEY`` (64 hex digits), else the file named by
``MINOLCORE_AUDIT_KEY_FILE`` (which must exist), else ``<database>.audit-key`` beside the
database, created on first use with 32 random bytes and mode 0600. A key file readable by
group or others is refused, as ssh refuses such private keys. The key never appears in an
error message.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path

from minolcore.errors import ConfigError

__all__ = ["AUDIT_KEY_ENV", "AUDIT_KEY_FILE_ENV", "audit_key_for", "audit_key_path"]

AUDIT_KEY_ENV = "MINOLCORE_AUDIT_KEY"
AUDIT_KEY_FILE_ENV = "MINOLCORE_AUDIT_KEY_FILE"
_KEY_BYTES = 32


def audit_key_path(db_path: str | Path) -> Path:
    """The default key file of the database ``db_path``: ``<db_path>.audit-key``."""
    return Path(f"{db_path}.audit-key")


def _parse(text: str, where: str) -> bytes:
    text = text.strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != _KEY_BYTES:
        raise ConfigError(f"the audit key must be {2 * _KEY_BYTES} hex digits", where)
    return key


def _read(path: Path) -> bytes:
    try:
        info = path.stat()
        if os.name == "posix" and info.st_mode & 0o077:
            raise ConfigError("the audit key file may be readable by others; make it mode 0600", str(path))
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as error:
        raise ConfigError(f"cannot read the audit key file: {error.strerror}", str(path)) from None
    return _parse(text, str(path))


def _create(path: Path) -> bytes:
    """Create ``path`` with a new key unless it exists; returns the key in the file either way.

    The key is written to a private temporary file that is then linked to its name, so a
    concurrent run never reads a half-written file and exactly one key wins."""
    key = secrets.token_bytes(_KEY_BYTES)
    try:
        fd, temp = tempfile.mkstemp(prefix=".audit-key-", dir=path.parent)
    except OSError as error:
        raise ConfigError(f"cannot create the audit key file: {error.strerror}", str(path)) from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key.hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            return _read(path)
        except OSError as error:
            raise ConfigError(f"cannot create the audit key file: {error.strerror}", str(path)) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)
    return key


def audit_key_for(db_path: str | Path, environ: Mapping[str, str] | None = None) -> bytes:
    """The audit key for the database ``db_path`` (see the module docstring for the order)."""
    env = os.environ if environ is None else environ
    text = env.get(AUDIT_KEY_ENV)
    if text:
        return _parse(text, AUDIT_KEY_ENV)
    named = env.get(AUDIT_KEY_FILE_ENV)
    if named:
        return _read(Path(named))
    path = audit_key_path(db_path)
    if path.exists():
        return _read(path)
    return _create(path)
