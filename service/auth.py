"""Bearer keys: read from the header, compared in constant time. A tenant's keys are looked up in the state
database (service/tenants.py): the tenant always comes from the key, never from the request body."""

import hashlib
import hmac

from pydantic import SecretStr

__all__ = ["bearer_matches", "bearer_token"]


def bearer_token(authorization: str | None) -> str:
    """The key in an `Authorization: Bearer <key>` header, or "" when there is none."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return ""
    return authorization[7:].strip()


def bearer_matches(authorization: str | None, key: SecretStr) -> bool:
    """Whether the header's bearer key is `key`, compared in constant time (as digests: equal lengths)."""
    given = hashlib.sha256(bearer_token(authorization).encode()).digest()
    return hmac.compare_digest(given, hashlib.sha256(key.get_secret_value().encode()).digest())
