"""Bearer key to tenant: the tenant always comes from the key, never from the request body."""

import hashlib
import hmac

from pydantic import SecretStr

from ragserve.errors import AuthError
from ragserve.service.config import ServeConfig

__all__ = ["KeyRing", "bearer_matches", "bearer_token"]


def bearer_token(authorization: str | None) -> str:
    """The key in an `Authorization: Bearer <key>` header, or "" when there is none."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return ""
    return authorization[7:].strip()


def bearer_matches(authorization: str | None, key: SecretStr) -> bool:
    """Whether the header's bearer key is `key`, compared in constant time (as digests: equal lengths)."""
    given = hashlib.sha256(bearer_token(authorization).encode()).digest()
    return hmac.compare_digest(given, hashlib.sha256(key.get_secret_value().encode()).digest())


class KeyRing:
    """Maps sha256(api key) to tenant; keys are compared in constant time."""

    def __init__(self, config: ServeConfig) -> None:
        self._by_hash = {t.key_sha256(name): name for name, t in config.tenants.items()}

    def tenant_for(self, authorization: str | None) -> str:
        key = bearer_token(authorization)
        if not key:
            raise AuthError("missing API key: send 'Authorization: Bearer <key>'")
        digest = hashlib.sha256(key.encode()).hexdigest()
        for known, tenant in self._by_hash.items():
            if hmac.compare_digest(known, digest):
                return tenant
        raise AuthError("unknown API key")
