"""Bearer key to tenant: the tenant always comes from the key, never from the request body."""

import hashlib
import hmac

from ragserve.errors import AuthError
from service.config import ServeConfig

__all__ = ["KeyRing"]


class KeyRing:
    """Maps sha256(api key) to tenant; keys are compared in constant time."""

    def __init__(self, config: ServeConfig) -> None:
        self._by_hash = {t.key_sha256(name): name for name, t in config.tenants.items()}

    def tenant_for(self, authorization: str | None) -> str:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise AuthError("missing API key: send 'Authorization: Bearer <key>'")
        digest = hashlib.sha256(authorization[7:].strip().encode()).hexdigest()
        for known, tenant in self._by_hash.items():
            if hmac.compare_digest(known, digest):
                return tenant
        raise AuthError("unknown API key")
