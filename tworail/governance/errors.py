"""Exceptions of the governance control plane.

Every class derives from `GovernanceError`, so a caller can catch all of them
at once. The subclasses let a caller react to one kind of failure.
"""

from __future__ import annotations


class GovernanceError(Exception):
    """Base class of every error the governance control plane raises."""


class PolicyError(GovernanceError, ValueError):
    """A learn policy file is missing, unreadable or invalid."""


class ContractViolation(GovernanceError):
    """A document's provenance misses a field the data contract requires."""

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing
        """Names of the provenance fields that are missing or invalid."""


class AuthenticationError(GovernanceError):
    """A learning request is unsigned, badly signed, stale or replayed."""

    rule = "auth"
    """Audit rule name of the failed check."""


class UnknownPrincipalError(AuthenticationError):
    """The request names a principal that has no key."""

    rule = "auth.principal"


class SignatureError(AuthenticationError):
    """The request's signature does not match its content and the principal's key."""

    rule = "auth.signature"


class StaleRequestError(AuthenticationError):
    """The request's timestamp lies outside the accepted time window."""

    rule = "auth.timestamp"


class ReplayedNonceError(AuthenticationError):
    """The request's nonce was already used inside the time window."""

    rule = "auth.nonce"


class RateLimitExceeded(GovernanceError):
    """A principal or source sent more requests than its token bucket allows."""

    def __init__(self, message: str, key: str, retry_after: float) -> None:
        super().__init__(message)
        self.key = key
        """The limited key, for example 'principal:alice'."""
        self.retry_after = retry_after
        """Seconds until the bucket contains a token again."""


class SnapshotNotFound(GovernanceError, KeyError):
    """A snapshot or delta id is not in the snapshot store."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "snapshot not found"


class SnapshotCorrupted(GovernanceError):
    """Stored bytes no longer hash to their content id."""


class PayloadErased(GovernanceError):
    """A learned text cannot be read back because its source key was deleted."""


class LineageError(GovernanceError):
    """The audit trail and the stored snapshots disagree about the fast weights."""


class NothingToUnlearn(GovernanceError, LookupError):
    """An unlearn or revert request matches no committed learning event."""


class LearnRejected(GovernanceError):
    """A governed learn did not commit; `outcome` records which step rejected it and why."""

    def __init__(self, outcome) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome
        """The `LearnOutcome` of the rejected request."""
