"""Tenant names: the partition key of every point, every read and every delete."""

import re

from ragserve.errors import InvalidTenantError

__all__ = ["check_tenant"]

_TENANT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def check_tenant(name: str) -> str:
    """Returns the name if it is 1-63 of a-z, 0-9, '.', '_' or '-', starting with a letter or digit."""
    if not _TENANT.fullmatch(name):
        raise InvalidTenantError(
            f"invalid tenant {name!r}: use 1-63 characters of a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name
