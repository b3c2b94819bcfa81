"""minolcore.access: the data-protection layer (grants with a legal basis, enforced and audited
reads, retention and erasure, portal accounts and bearer tokens). See docs/data-protection.md."""

from minolcore.access.accounts import Accounts
from minolcore.access.audit import AuditLog, AuditProblem, AuditRecord, AuditReport, verify_records
from minolcore.access.grants import DEVICE_CLASSES, GrantRegistry
from minolcore.access.guard import AccessLayer, Actor, Cover, ReadingView, StatusView
from minolcore.access.keyfile import AUDIT_KEY_ENV, AUDIT_KEY_FILE_ENV, audit_key_for, audit_key_path
from minolcore.access.model import (
    OPERATOR_PURPOSES,
    AuthenticationError,
    Consent,
    DenyReason,
    Grant,
    LegalBasis,
    LockedOutError,
    NoGrantError,
    NotAuthorizedError,
    PolicyDeniedError,
    Principal,
    Purpose,
    Role,
    TokenError,
)
from minolcore.access.policy import POLICIES, PurposePolicy, device_class
from minolcore.access.retention import ErasureResult, RetentionPolicy, apply_retention, erase_person
from minolcore.access.tokens import BearerToken, TokenClaims, TokenService

__all__ = [
    "AUDIT_KEY_ENV",
    "AUDIT_KEY_FILE_ENV",
    "DEVICE_CLASSES",
    "OPERATOR_PURPOSES",
    "POLICIES",
    "AccessLayer",
    "Accounts",
    "Actor",
    "AuditLog",
    "AuditProblem",
    "AuditRecord",
    "AuditReport",
    "AuthenticationError",
    "BearerToken",
    "Consent",
    "Cover",
    "DenyReason",
    "ErasureResult",
    "Grant",
    "GrantRegistry",
    "LegalBasis",
    "LockedOutError",
    "NoGrantError",
    "NotAuthorizedError",
    "PolicyDeniedError",
    "Principal",
    "Purpose",
    "PurposePolicy",
    "ReadingView",
    "RetentionPolicy",
    "Role",
    "StatusView",
    "TokenClaims",
    "TokenError",
    "TokenService",
    "apply_retention",
    "audit_key_for",
    "audit_key_path",
    "device_class",
    "erase_person",
    "verify_records",
]
