"""The one record type used throughout minolcore.

``msgspec.Struct`` with ``frozen=True, gc=False`` builds in roughly a fifth of the
time of a frozen slotted dataclass and takes less memory, and it encodes to JSON
natively; the pipeline creates millions of these, so the choice is made once here.
Subclasses inherit the configuration: ``class Reading(Record): ...``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

__all__ = ["Record", "replace"]

if TYPE_CHECKING:
    from typing import TypeVar, dataclass_transform

    # Type checkers see what msgspec does at run time: every subclass is a frozen,
    # keyword-only record class (msgspec passes the base configuration down).
    @dataclass_transform(frozen_default=True, kw_only_default=True)
    class Record:
        """Base of every frozen, slotted, keyword-only value object in minolcore."""

        def __init_subclass__(cls, **kwargs: Any) -> None: ...

    _R = TypeVar("_R", bound=Record)

    def replace(record: _R, **changes: Any) -> _R:
        """A copy of ``record`` with some fields changed."""

else:

    class Record(msgspec.Struct, frozen=True, gc=False, kw_only=True):
        """Base of every frozen, slotted, keyword-only value object in minolcore."""

    replace = msgspec.structs.replace
