"""HMAC keys of the principals allowed to request learning, kept in the data directory.

When `<data_dir>/governance/keys.json` exists, the agent's learner verifies every
learning request against it, so unsigned or wrongly signed requests are rejected
and audited. The file maps each principal to a hex-encoded secret and is written
with mode 0600, because anyone who reads a secret can learn in that principal's name.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from tworail.governance.auth import KeyRing
from tworail.governance.errors import GovernanceError

KEY_BYTES = 32
"""Length of a generated HMAC secret."""


def keys_path(data_dir: Path) -> Path:
    """Return the key file of a data directory."""
    return Path(data_dir) / "governance" / "keys.json"


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise GovernanceError(f"cannot read the key file {path}: {error}; restore it or remove it") from None
    if not isinstance(data, dict) or not all(isinstance(value, str) for value in data.values()):
        raise GovernanceError(f"the key file {path} must map principal names to hex secrets")
    return data


def add_hmac_key(data_dir: Path, principal: str) -> bytes:
    """Create a new HMAC secret for `principal`, store it and return it; replaces an existing one."""
    if not principal.strip():
        raise GovernanceError("the principal name is empty; pass a name such as 'support-bot'")
    path = keys_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = _read(path) if path.exists() else {}
    secret = secrets.token_bytes(KEY_BYTES)
    keys[principal] = secret.hex()
    tmp = path.with_suffix(".tmp")
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(keys, handle, indent=2)
    os.replace(tmp, path)
    return secret


def load_keyring(data_dir: Path) -> KeyRing | None:
    """Return the data directory's key ring, or None when it has no key file."""
    path = keys_path(data_dir)
    if not path.exists():
        return None
    return KeyRing(hmac_keys={principal: bytes.fromhex(secret) for principal, secret in _read(path).items()})
