"""API key tokens: ``fml_<key id>_<secret>``; the key id finds the record, a SHA-256 checks the secret.

A plain SHA-256 is right here (not argon2): the secret is 256 random bits, so nothing can be guessed
offline, and checking it must cost microseconds on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PREFIX = "fml_"
_TOKEN = re.compile(r"^fml_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


def new_token() -> tuple[str, str]:
    """A fresh (token, key_id)."""
    key_id = secrets.token_hex(6)
    return f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}", key_id


def parse_token(token: str) -> str | None:
    """The key id of a well-formed token, else None."""
    m = _TOKEN.match(token)
    return m.group(1) if m else None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)
