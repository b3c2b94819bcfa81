"""Who asks, for what, on which legal basis: principals, purposes, grants, consents and denials.

Times are seconds since the epoch (UTC, float); data periods are local days of the site
(ISO ``YYYY-MM-DD`` text, both ends inclusive), the calendar reading times are kept in.
"""

from __future__ import annotations

from enum import StrEnum

from minolcore._model import Record
from minolcore.errors import AccessDeniedError, InputError

__all__ = [
    "OPERATOR_PURPOSES",
    "AuthenticationError",
    "Consent",
    "DenyReason",
    "Grant",
    "LegalBasis",
    "LockedOutError",
    "NoGrantError",
    "NotAuthorizedError",
    "PolicyDeniedError",
    "Principal",
    "Purpose",
    "Role",
    "TokenError",
]


class Role(StrEnum):
    """What kind of party a principal is."""

    OPERATOR = "operator"
    OWNER = "owner"
    LANDLORD = "landlord"
    TENANT = "tenant"
    AUDITOR = "auditor"
    SERVICE = "service"


class Purpose(StrEnum):
    """Why data is read (GDPR Art. 5(1)(b): purpose limitation)."""

    BILLING = "billing"
    CONSUMPTION_INFO = "consumption_info"
    SMOKE_INSPECTION = "smoke_inspection"
    ANALYSIS = "analysis"


class LegalBasis(StrEnum):
    """The lawful basis of a grant (GDPR Art. 6(1))."""

    CONTRACT = "contract"
    CONSENT = "consent"
    LEGAL_OBLIGATION = "legal_obligation"
    LEGITIMATE_INTEREST = "legitimate_interest"


# The metering company's own staff read under its metering contract, each role only for
# the purposes its job needs; "data_protection" staff audit but read no readings.
OPERATOR_PURPOSES: dict[str, frozenset[Purpose]] = {
    "admin": frozenset(Purpose),
    "billing": frozenset((Purpose.BILLING, Purpose.CONSUMPTION_INFO)),
    "technician": frozenset((Purpose.SMOKE_INSPECTION,)),
    "analyst": frozenset((Purpose.ANALYSIS,)),
    "data_protection": frozenset(),
}


class Principal(Record):
    """A party that reads: ``id`` (stable person or staff id), ``role``; operator staff have a
    ``staff_role`` (a key of :data:`OPERATOR_PURPOSES`); a service names whom it acts for."""

    id: str
    role: Role
    staff_role: str | None = None
    acting_for: Principal | None = None

    def __post_init__(self) -> None:
        # Roles are compared by identity (``is Role.SERVICE``) and by equality (``in``): a
        # role given as text would pass some checks and fail others.
        if not isinstance(self.role, Role):
            raise InputError(f"a principal's role must be a Role, not {type(self.role).__name__}")
        if not isinstance(self.id, str) or not self.id:
            raise InputError("a principal's id must be a non-empty string")
        if self.staff_role is not None and not isinstance(self.staff_role, str):
            raise InputError("a principal's staff_role must be a string or None")
        if self.acting_for is not None and not isinstance(self.acting_for, Principal):
            raise InputError("a principal acts for a Principal or nobody")

    def effective(self) -> Principal | None:
        """The principal whose grants apply: the one a service acts for (None if it acts for
        nobody), else this principal."""
        if self.role is Role.SERVICE:
            if self.acting_for is None or self.acting_for.role is Role.SERVICE:
                return None
            return self.acting_for
        return self


class Grant(Record):
    """A permission with a legal basis.

    ``unit`` None covers the whole building; ``device_kinds`` empty covers every kind (else
    "heating", "water", "smoke", "pulse", "other"). ``valid_from``/``valid_until`` (s since the
    epoch) bound when it may be used, ``data_from``/``data_until`` (local ISO days, inclusive)
    which readings it covers. A consent-based grant names its consent. ``granted_by`` is the
    audit-trail reference (pseudonym) of whoever created it, so an owner can revoke what they gave.
    """

    id: str
    principal_id: str
    building: str
    unit: str | None
    device_kinds: tuple[str, ...]
    purpose: Purpose
    basis: LegalBasis
    valid_from: float
    valid_until: float | None = None
    data_from: str | None = None
    data_until: str | None = None
    consent_id: str | None = None
    revoked_at: float | None = None
    granted_by: str | None = None

    def usable_at(self, now: float) -> bool:
        """Whether the grant may be used at ``now`` (s since the epoch), ignoring its consent."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.valid_from <= now and (self.valid_until is None or now < self.valid_until)


class Consent(Record):
    """An explicit consent of ``subject`` (a person id) for ``purpose``, with its ``evidence``
    (e.g. the signed form's reference); times in s since the epoch."""

    id: str
    subject: str
    purpose: Purpose
    evidence: str
    recorded_at: float
    revoked_at: float | None = None

    def active_at(self, now: float) -> bool:
        """Whether the consent holds at ``now`` (s since the epoch)."""
        return self.recorded_at <= now and (self.revoked_at is None or now < self.revoked_at)


class DenyReason(StrEnum):
    """Why an access was refused (the ``code`` of every denial)."""

    NO_PRINCIPAL = "no_principal"
    NO_GRANT = "no_grant"
    PURPOSE_NOT_ALLOWED = "purpose_not_allowed"
    OUT_OF_SCOPE = "out_of_scope"
    REVOKED = "revoked"
    EXPIRED = "expired"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    NOT_TENANT = "not_tenant"
    TOKEN_INVALID = "token_invalid"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_REVOKED = "token_revoked"
    TOKEN_AUDIENCE = "token_audience"
    TOKEN_SCOPE = "token_scope"
    BAD_CREDENTIALS = "bad_credentials"
    LOCKED_OUT = "locked_out"
    NO_AUTHORITY = "no_authority"


class PolicyDeniedError(AccessDeniedError):
    """An access refused by the access layer; ``code`` says which check failed."""

    def __init__(self, code: DenyReason, detail: str = "") -> None:
        super().__init__(f"{code.value}: {detail}" if detail else code.value)
        self.code = code
        self.detail = detail


class NoGrantError(PolicyDeniedError):
    """No valid grant covers the principal, purpose and scope asked for."""


class NotAuthorizedError(PolicyDeniedError):
    """A grant, revocation or consent change the acting principal may not make."""


class TokenError(PolicyDeniedError):
    """A bearer token that is malformed, tampered, expired, revoked or for another audience or scope."""


class AuthenticationError(PolicyDeniedError):
    """A login that failed (the message never says whether the user exists)."""


class LockedOutError(AuthenticationError):
    """Too many failed logins: the account is locked until ``until`` (s since the epoch)."""

    def __init__(self, until: float) -> None:
        super().__init__(DenyReason.LOCKED_OUT, "too many failed logins")
        self.until = until
