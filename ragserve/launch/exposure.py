"""What the service refuses to start with, because anyone who can reach it could then use it: the demo's
published keys outside the demo, plain keys in the config on a network address, and a blank or guessable
admin key. Each refusal is one ConfigError naming what to change.

The demo's keys are public (in examples/ragserve.toml, the README, the docs and the Makefile), so a server
that accepts them is open to everyone; `make demo` sets RAGSERVE_DEMO=1 to serve them on loopback.
"""

import hashlib
import hmac
import ipaddress

from ragserve.errors import ConfigError
from ragserve.service.config import ServeConfig
from ragserve.settings import Settings

__all__ = ["DEMO_KEYS", "MIN_ADMIN_KEY_CHARS", "check_safe_to_serve", "is_loopback"]

# Every key the demo publishes: its tenants' keys and the admin key `make demo` serves with.
DEMO_KEYS = ("acme-demo-key", "globex-demo-key", "demo-admin-key")
MIN_ADMIN_KEY_CHARS = 16
_PLACEHOLDERS = frozenset({"changeme", "change-me", "change_me", "secret", "password", "admin", "admin-key",
                           "test", "example", "xxx"})  # fmt: skip
_DEMO_HASHES = frozenset(hashlib.sha256(key.encode()).hexdigest() for key in DEMO_KEYS)


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches: 127.0.0.0/8, ::1 or localhost."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def check_safe_to_serve(config: ServeConfig, settings: Settings, host: str) -> None:
    """Raises ConfigError, naming the tenant or the setting, if serving `config` on `host` would be open."""
    for name, tenant in config.tenants.items():
        if not settings.demo and _is_demo_hash(tenant.key_sha256(name)):
            raise ConfigError(
                f"tenant {name}: its API key is one of the demo's published keys; give it its own key "
                "(api_key_env or api_key_sha256), or set RAGSERVE_DEMO=1 to serve the demo"
            )
        if tenant.api_key is not None and not is_loopback(host):
            raise ConfigError(
                f"tenant {name}: a plain api_key in the config is only served on a loopback address, not "
                f'{host}; use api_key_env = "VAR" or api_key_sha256 = "<hex>"'
            )
    _check_admin_key(settings)


def _is_demo_hash(digest: str) -> bool:
    return any(hmac.compare_digest(digest, known) for known in _DEMO_HASHES)


def _check_admin_key(settings: Settings) -> None:
    """Unset turns the admin API off; set, it must be a real secret (outside the demo)."""
    if settings.admin_key is None:
        return
    key = settings.admin_key.get_secret_value()
    if not key.strip():
        raise ConfigError(
            "RAGSERVE_ADMIN_KEY is set but blank, which would open the admin API; unset it to turn the admin "
            f"API off, or set a random key of {MIN_ADMIN_KEY_CHARS} characters or more"
        )
    if settings.demo:
        return
    if key.strip().lower() in _PLACEHOLDERS or key in DEMO_KEYS:
        raise ConfigError("RAGSERVE_ADMIN_KEY is a placeholder or the demo's key; set a random key")
    if len(key) < MIN_ADMIN_KEY_CHARS:
        raise ConfigError(
            f"RAGSERVE_ADMIN_KEY has {len(key)} characters; use a random key of {MIN_ADMIN_KEY_CHARS} or "
            "more (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
