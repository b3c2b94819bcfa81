"""OAuth 2.0-style bearer access tokens: JWTs (RFC 9068 claims) signed with HMAC-SHA-256 by joserfc.

Claims: ``iss``, ``aud``, ``sub`` (principal id), ``role``, ``staff_role``, ``act`` (RFC 8693:
the service acting for ``sub``), ``scope`` ("grant:<id> ..." or "staff"), ``iat``/``exp`` (s since
the epoch) and ``jti``. A token is checked on every read: signature, audience, issuer, expiry,
revocation of the token and of every grant it names.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Sequence

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from minolcore._model import Record
from minolcore.access.grants import GrantRegistry
from minolcore.access.model import DenyReason, Grant, Principal, Role, TokenError
from minolcore.errors import ConfigError
from minolcore.reception import is_event_time

__all__ = ["BearerToken", "TokenClaims", "TokenService"]

_ALGORITHMS = ["HS256"]
_MIN_KEY_BYTES = 32


class BearerToken:
    """A token as received from a client; prints redacted so it never lands in a log."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The token text, for the verification step only."""
        return self._value

    def __repr__(self) -> str:
        return "BearerToken(<redacted>)"

    __str__ = __repr__


class TokenClaims(Record):
    """A verified token: the principal, the grant ids it is limited to (None = operator staff,
    limited by staff role), its id and expiry (s since the epoch)."""

    principal: Principal
    grant_ids: frozenset[str] | None
    jti: str
    expires_at: float


class TokenService:
    """Issues and verifies access tokens; ``key`` (32+ bytes) signs them, ``lifetime_s`` bounds
    them (default 300 s)."""

    def __init__(
        self,
        db: sqlite3.Connection,
        grants: GrantRegistry,
        key: bytes,
        *,
        issuer: str,
        audience: str,
        clock: Callable[[], float],
        lifetime_s: float = 300.0,
    ) -> None:
        if len(key) < _MIN_KEY_BYTES:
            raise ConfigError(f"the token key needs at least {_MIN_KEY_BYTES} bytes", "token_key")
        if lifetime_s <= 0:
            raise ConfigError("must be positive (s)", "lifetime_s")
        self._db = db
        self._grants = grants
        self._key = OctKey.import_key(key)
        self._issuer = issuer
        self._audience = audience
        self._clock = clock
        self._lifetime_s = lifetime_s

    def __repr__(self) -> str:
        return f"<TokenService {self._issuer} -> {self._audience}>"

    def issue(self, principal: Principal, grants: Sequence[Grant] = ()) -> BearerToken:
        """A token for ``principal`` limited to ``grants`` (each must be the principal's, or the
        acted-for principal's); operator staff get a staff token without grants."""
        effective = principal.effective()
        if effective is None:
            raise TokenError(DenyReason.NO_PRINCIPAL, "a service token must name whom it acts for")
        now = self._clock()
        claims: dict[str, object] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": effective.id,
            "role": effective.role.value,
            "iat": int(now),
            "exp": int(now + self._lifetime_s),
            "jti": secrets.token_hex(16),
        }
        if effective.staff_role is not None:
            claims["staff_role"] = effective.staff_role
        if principal is not effective:
            claims["act"] = {"sub": principal.id}
        if effective.role is Role.OPERATOR:
            claims["scope"] = "staff"
        else:
            for grant in grants:
                if grant.principal_id != effective.id:
                    raise TokenError(DenyReason.TOKEN_SCOPE, f"grant {grant.id} belongs to someone else")
            claims["scope"] = " ".join(f"grant:{g.id}" for g in grants)
        return BearerToken(jwt.encode({"alg": "HS256"}, claims, self._key, algorithms=_ALGORITHMS))

    def revoke(self, claims: TokenClaims) -> None:
        """Refuse this token from now on (kept until it would have expired anyway)."""
        self._db.execute(
            "INSERT INTO access_revoked_tokens VALUES (?, ?) ON CONFLICT DO NOTHING",
            (claims.jti, claims.expires_at),
        )
        self._db.execute("DELETE FROM access_revoked_tokens WHERE expires_at < ?", (self._clock(),))

    def verify(self, token: BearerToken, *, audience: str | None = None) -> TokenClaims:
        """The claims of a valid token; :class:`TokenError` with the reason otherwise (the
        message never contains the token)."""
        try:
            decoded = jwt.decode(token.reveal(), self._key, algorithms=_ALGORITHMS)
        except (JoseError, ValueError):
            raise TokenError(DenyReason.TOKEN_INVALID, "malformed or wrong signature") from None
        claims = decoded.claims
        if decoded.header.get("alg") != "HS256":
            raise TokenError(DenyReason.TOKEN_INVALID, "unexpected algorithm")
        if claims.get("iss") != self._issuer:
            raise TokenError(DenyReason.TOKEN_INVALID, "wrong issuer")
        if claims.get("aud") != (audience or self._audience):
            raise TokenError(DenyReason.TOKEN_AUDIENCE, "wrong audience")
        exp = claims.get("exp")
        # An integer inside the calendar: NaN compares false with every time (it never expires).
        if not is_event_time(exp) or self._clock() >= exp:
            raise TokenError(DenyReason.TOKEN_EXPIRED, "expired or no expiry time")
        jti = claims.get("jti")
        sub = claims.get("sub")
        if not isinstance(jti, str) or not isinstance(sub, str) or not sub:
            raise TokenError(DenyReason.TOKEN_INVALID, "missing jti or sub")
        if self._db.execute("SELECT 1 FROM access_revoked_tokens WHERE jti = ?", (jti,)).fetchone():
            raise TokenError(DenyReason.TOKEN_REVOKED, "token revoked")
        try:
            role = Role(str(claims.get("role")))
        except ValueError:
            raise TokenError(DenyReason.TOKEN_INVALID, "unknown role") from None
        staff = claims.get("staff_role")
        principal = Principal(id=sub, role=role, staff_role=staff if isinstance(staff, str) else None)
        act = claims.get("act")
        if isinstance(act, dict) and isinstance(act.get("sub"), str):
            if not act["sub"]:
                raise TokenError(DenyReason.TOKEN_INVALID, "an actor without a sub")
            principal = Principal(id=act["sub"], role=Role.SERVICE, acting_for=principal)
        scope = str(claims.get("scope", ""))
        grant_ids: frozenset[str] | None
        if not scope.isprintable():
            raise TokenError(DenyReason.TOKEN_SCOPE, "unknown scope")
        if role is Role.OPERATOR:
            if scope != "staff":
                raise TokenError(DenyReason.TOKEN_SCOPE, "operator token without staff scope")
            grant_ids = None
        else:
            names = scope.split()
            if any(not name.startswith("grant:") for name in names):
                raise TokenError(DenyReason.TOKEN_SCOPE, "unknown scope")
            grant_ids = frozenset(name[len("grant:") :] for name in names)
            now = self._clock()
            for grant_id in sorted(grant_ids):
                grant = self._grants.get(grant_id)
                if grant is None or grant.principal_id != sub:
                    raise TokenError(DenyReason.TOKEN_SCOPE, f"grant {grant_id} not held")
                if grant.revoked_at is not None:
                    raise TokenError(DenyReason.TOKEN_REVOKED, f"grant {grant_id} revoked")
                if not grant.usable_at(now):
                    raise TokenError(DenyReason.TOKEN_EXPIRED, f"grant {grant_id} not valid now")
        return TokenClaims(principal=principal, grant_ids=grant_ids, jti=jti, expires_at=float(exp))
