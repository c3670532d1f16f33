"""Signed bearer tokens and session cookies (same format), and device keys.

Tokens are signed with the gateway's secret and carry the user's token
version, so changing a password or disabling a user revokes them.
Device keys are 256-bit random secrets; only their SHA-256 is stored (a
slow hash adds nothing for a secret of that entropy, and keys are checked on
every kiosk request and upload chunk).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

DEVICE_KEY_PREFIX = "dk_"


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    role: str
    version: int


class TokenSigner:
    def __init__(self, secret: str, ttl_s: int) -> None:
        self._s = URLSafeTimedSerializer(secret, salt="gateway-token")
        self.ttl_s = ttl_s

    def issue(self, user_id: int, role: str, version: int) -> str:
        return self._s.dumps({"u": user_id, "r": role, "v": version})

    def verify(self, token: str) -> TokenClaims | None:
        try:
            data = self._s.loads(token, max_age=self.ttl_s)
            return TokenClaims(int(data["u"]), str(data["r"]), int(data["v"]))
        except (BadSignature, SignatureExpired, KeyError, TypeError, ValueError):
            return None


def new_device_key() -> str:
    return DEVICE_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_device_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def device_key_matches(stored_hash: str | None, key: str) -> bool:
    if not stored_hash:
        return False
    return hmac.compare_digest(stored_hash, hash_device_key(key))
