"""FPort -> payload codec registry, per device profile.

A LoRaWAN application payload means nothing without knowing the device: the same
FPort carries different formats on different products. A :class:`CodecRegistry`
maps ``(profile, fport)`` to a callable that turns the decrypted FRMPayload into a
value.

Registration is open to any module. A module that adds a format registers it on the
registry it is given (or on :data:`default_registry`), for example::

    from minolcore.lorawan.codecs import default_registry

    default_registry.register("minol-lora-heat", 2, decode_en13757_records)

A codec is any ``Callable[[bytes], Any]``. Errors it raises that are
:class:`~minolcore.errors.MinolcoreError` pass through unchanged; anything else is
wrapped in :class:`CodecError` (with the original as ``__cause__``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from minolcore.errors import InputError, LoRaWANError, MinolcoreError

__all__ = [
    "APP_FPORT_MAX",
    "APP_FPORT_MIN",
    "Codec",
    "CodecError",
    "CodecNotFoundError",
    "CodecRegistrationError",
    "CodecRegistry",
    "default_registry",
    "raw_codec",
]

APP_FPORT_MIN = 1
APP_FPORT_MAX = 223
"""FPorts 1..223 are application-specific; 0 carries MAC commands, 224..255 are reserved."""

Codec = Callable[[bytes], Any]


class CodecNotFoundError(LoRaWANError):
    """No codec registered for this profile and FPort. ``known_fports`` lists the profile's ports."""

    def __init__(self, profile: str, fport: int, known_fports: tuple[int, ...]) -> None:
        if known_fports:
            hint = f"profile {profile!r} has codecs for FPort {', '.join(map(str, known_fports))}"
        else:
            hint = f"profile {profile!r} has no codecs registered"
        super().__init__(f"no payload codec for profile {profile!r}, FPort {fport} ({hint})")
        self.profile = profile
        self.fport = fport
        self.known_fports = known_fports


class CodecRegistrationError(LoRaWANError, InputError):
    """A registration that is invalid (bad FPort, not callable) or would silently replace one."""


class CodecError(LoRaWANError):
    """A codec failed on a payload with an error that is not a minolcore error."""

    def __init__(self, profile: str, fport: int, reason: str) -> None:
        super().__init__(f"codec for profile {profile!r}, FPort {fport} failed: {reason}")
        self.profile = profile
        self.fport = fport
        self.reason = reason


def raw_codec(payload: bytes) -> bytes:
    """The built-in passthrough codec: returns the payload bytes unchanged."""
    return bytes(payload)


class CodecRegistry:
    """Maps (device profile, FPort) to a payload codec."""

    __slots__ = ("_codecs",)

    def __init__(self) -> None:
        """Create an empty registry."""
        self._codecs: dict[str, dict[int, Codec]] = {}

    def register(self, profile: str, fport: int, codec: Codec, *, replace: bool = False) -> None:
        """Register ``codec`` for ``profile`` on ``fport`` (1..223).

        Registering a second codec for the same pair raises unless ``replace=True``, so
        two modules cannot overwrite each other by accident.
        """
        if not isinstance(profile, str) or not profile:
            raise CodecRegistrationError("a profile name must be a non-empty str")
        if not isinstance(fport, int) or not APP_FPORT_MIN <= fport <= APP_FPORT_MAX:
            raise CodecRegistrationError(
                f"FPort {fport!r} is not an application port ({APP_FPORT_MIN}..{APP_FPORT_MAX})"
            )
        if not callable(codec):
            raise CodecRegistrationError(f"codec for {profile!r}/{fport} is not callable")
        ports = self._codecs.setdefault(profile, {})
        if fport in ports and not replace:
            raise CodecRegistrationError(
                f"profile {profile!r} already has a codec on FPort {fport}; pass replace=True to swap it"
            )
        ports[fport] = codec

    def unregister(self, profile: str, fport: int) -> None:
        """Remove a registration; a missing one raises :class:`CodecNotFoundError`."""
        ports = self._codecs.get(profile, {})
        if fport not in ports:
            raise CodecNotFoundError(profile, fport, tuple(sorted(ports)))
        del ports[fport]
        if not ports:
            del self._codecs[profile]

    def lookup(self, profile: str, fport: int) -> Codec:
        """The codec for (profile, FPort); raises :class:`CodecNotFoundError`."""
        ports = self._codecs.get(profile)
        if ports is None or fport not in ports:
            raise CodecNotFoundError(profile, fport, tuple(sorted(ports or ())))
        return ports[fport]

    def decode(self, profile: str, fport: int, payload: bytes) -> Any:
        """Run the registered codec on a decrypted FRMPayload."""
        codec = self.lookup(profile, fport)
        try:
            return codec(payload)
        except MinolcoreError:
            raise
        except Exception as exc:
            raise CodecError(profile, fport, f"{type(exc).__name__}: {exc}") from exc

    def profiles(self) -> Mapping[str, tuple[int, ...]]:
        """Registered profiles and their FPorts (a snapshot)."""
        return MappingProxyType({name: tuple(sorted(ports)) for name, ports in self._codecs.items()})

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, tuple) or len(item) != 2:
            return False
        profile, fport = item
        return isinstance(profile, str) and fport in self._codecs.get(profile, {})

    def __repr__(self) -> str:
        return f"CodecRegistry(profiles={len(self._codecs)})"


default_registry = CodecRegistry()
"""The process-wide registry that other minolcore modules register their codecs on."""
