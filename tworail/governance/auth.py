"""Signed learning requests: HMAC-SHA256 (or Ed25519) per principal, a nonce and a time window.

A client signs the canonical message of a request, built from the principal,
the timestamp, the nonce, the SHA-256 of the text and the canonical JSON of
the provenance, so neither the text nor its provenance can be swapped. The
verifier rejects an unknown principal, a bad signature, a timestamp outside
the window and a nonce already seen within the window, each with its own
`AuthenticationError` subclass. Nonces are recorded only after the signature
verifies, so forged requests cannot use up a principal's nonces. The learner
reloads the nonces of the last window from the audit trail when it opens, so a
restart does not reopen the window for replays.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from datetime import datetime, timedelta
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel

from tworail.governance.errors import (
    ReplayedNonceError,
    SignatureError,
    StaleRequestError,
    UnknownPrincipalError,
)
from tworail.records import Provenance, utc_now

Algorithm = Literal["hmac-sha256", "ed25519"]
"""Signature scheme of a request."""


class SignedRequest(BaseModel):
    """The signature envelope of one learning request."""

    principal: str
    """Principal that sends the request, recorded as the actor in the audit trail."""
    timestamp: datetime
    """When the client signed the request (timezone-aware)."""
    nonce: str
    """A value used once; at least 16 characters."""
    signature: str
    """Hex signature of `canonical_message`."""
    algorithm: Algorithm = "hmac-sha256"
    """Signature scheme."""


def canonical_message(principal: str, timestamp: datetime, nonce: str, text: str, provenance: Provenance) -> bytes:
    """Return the bytes a request's signature covers."""
    parts = [
        "tworail-learn-v1",
        principal,
        timestamp.isoformat(),
        nonce,
        hashlib.sha256(text.encode("utf-8")).hexdigest(),
        provenance.model_dump_json(),
    ]
    return "\n".join(parts).encode("utf-8")


def sign_request(
    text: str,
    provenance: Provenance,
    *,
    principal: str,
    key: bytes | Ed25519PrivateKey,
    timestamp: datetime | None = None,
    nonce: str | None = None,
) -> SignedRequest:
    """Sign a learning request with an HMAC secret (bytes) or an Ed25519 private key (client side)."""
    timestamp = timestamp or utc_now()
    nonce = nonce or secrets.token_hex(16)
    message = canonical_message(principal, timestamp, nonce, text, provenance)
    if isinstance(key, Ed25519PrivateKey):
        return SignedRequest(principal=principal, timestamp=timestamp, nonce=nonce,
                             signature=key.sign(message).hex(), algorithm="ed25519")
    signature = hmac.new(key, message, hashlib.sha256).hexdigest()
    return SignedRequest(principal=principal, timestamp=timestamp, nonce=nonce, signature=signature)


class KeyRing:
    """Verification keys by principal: HMAC secrets and Ed25519 public keys."""

    def __init__(self, hmac_keys: dict[str, bytes] | None = None,
                 ed25519_keys: dict[str, Ed25519PublicKey] | None = None) -> None:
        self.hmac_keys = dict(hmac_keys or {})
        self.ed25519_keys = dict(ed25519_keys or {})
        for principal, key in self.hmac_keys.items():
            if len(key) < 16:
                raise ValueError(f"the HMAC key of principal {principal!r} has {len(key)} bytes; use at least 16")

    def verify_signature(self, request: SignedRequest, message: bytes) -> None:
        """Raise `UnknownPrincipalError` or `SignatureError` unless the signature is valid."""
        if request.algorithm == "ed25519":
            public = self.ed25519_keys.get(request.principal)
            if public is None:
                raise UnknownPrincipalError(f"principal {request.principal!r} has no Ed25519 key; register it "
                                            "in the key ring")
            try:
                public.verify(bytes.fromhex(request.signature), message)
            except (InvalidSignature, ValueError):
                raise SignatureError(f"the Ed25519 signature of principal {request.principal!r} does not match "
                                     "the request; sign the exact text and provenance sent") from None
            return
        secret = self.hmac_keys.get(request.principal)
        if secret is None:
            raise UnknownPrincipalError(f"principal {request.principal!r} has no HMAC key; register it in the key ring")
        expected = hmac.new(secret, message, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.signature):
            raise SignatureError(f"the HMAC-SHA256 signature of principal {request.principal!r} does not match "
                                 "the request; sign the exact text and provenance sent with the principal's key")


class RequestVerifier:
    """Checks signature, time window and nonce of learning requests; thread-safe."""

    def __init__(self, keyring: KeyRing, *, window: timedelta = timedelta(minutes=5)) -> None:
        self.keyring = keyring
        self.window = window
        self._seen: dict[tuple[str, str], datetime] = {}
        self._lock = threading.Lock()

    def verify(self, request: SignedRequest, text: str, provenance: Provenance, *, now: datetime | None = None) -> str:
        """Return the authenticated principal, or raise an `AuthenticationError` subclass."""
        now = now or utc_now()
        if request.timestamp.tzinfo is None:
            raise StaleRequestError("the request timestamp has no time zone; sign with a timezone-aware UTC time")
        if len(request.nonce) < 16:
            raise ReplayedNonceError(f"nonce {request.nonce!r} is shorter than 16 characters; use a random nonce")
        message = canonical_message(request.principal, request.timestamp, request.nonce, text, provenance)
        self.keyring.verify_signature(request, message)
        skew = abs(now - request.timestamp)
        if skew > self.window:
            raise StaleRequestError(f"the request was signed at {request.timestamp.isoformat()}, "
                                    f"{skew.total_seconds():.0f} s from now, outside the "
                                    f"{self.window.total_seconds():.0f} s window; sign it again")
        with self._lock:
            self._forget_before(now - self.window)
            key = (request.principal, request.nonce)
            if key in self._seen:
                raise ReplayedNonceError(f"nonce {request.nonce!r} of principal {request.principal!r} was already "
                                         "used; every request needs a fresh nonce")
            self._seen[key] = request.timestamp
        return request.principal

    def remember(self, principal: str, nonce: str, seen_at: datetime) -> None:
        """Mark a nonce as used, for example one read back from the audit trail after a restart."""
        with self._lock:
            self._seen[(principal, nonce)] = seen_at

    def _forget_before(self, cutoff: datetime) -> None:
        # A nonce older than the window cannot be replayed: its timestamp would be stale.
        for key in [key for key, stamp in self._seen.items() if stamp < cutoff]:
            del self._seen[key]
