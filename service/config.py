"""`ragserve.toml`: the base model and the tenants. Unknown keys, missing files, bad values fail at start."""

import hashlib
import os
import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from adapters.registry import AdapterRef
from ingest.tenancy import check_tenant
from ragserve.errors import AdapterInvalidError, ConfigError, InvalidTenantError, validation_problems
from ragserve.files import read_toml

__all__ = ["BUNDLED_BASE", "ModelConfig", "ServeConfig", "TenantConfig", "load_config"]

BUNDLED_BASE = "smollm2-135m"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    base: str = BUNDLED_BASE
    max_model_len: Annotated[int, Field(ge=256, le=32768)] = 2048
    max_tokens: Annotated[int, Field(ge=1, le=4096)] = 256


class TenantConfig(_Strict):
    """One tenant. Its key may be given plain, as a sha256, or by the name of an environment variable."""

    api_key: str | None = None
    api_key_sha256: str | None = None
    api_key_env: str | None = None
    docs: Path
    system_prompt: str = "You are a helpful support assistant. Answer from the numbered context."
    adapter: str = ""  # NAME or NAME@VERSION in the adapter registry; "" for the base model
    k: Annotated[int, Field(ge=0, le=50)] = 4

    @field_validator("adapter")
    @classmethod
    def _adapter_ref(cls, value: str) -> str:
        if value:
            try:
                AdapterRef.parse(value)
            except AdapterInvalidError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("api_key_sha256")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.fullmatch(value.lower()):
            raise ValueError("must be 64 hex digits")
        return value.lower() if value else value

    @model_validator(mode="after")
    def _one_key(self) -> "TenantConfig":
        given = [x for x in (self.api_key, self.api_key_sha256, self.api_key_env) if x]
        if len(given) != 1:
            raise ValueError("give exactly one of api_key, api_key_sha256 or api_key_env")
        return self

    def key_sha256(self, tenant: str) -> str:
        if self.api_key_sha256:
            return self.api_key_sha256
        key = self.api_key
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise ConfigError(f"tenant {tenant}: environment variable {self.api_key_env} is not set")
        return hashlib.sha256(str(key).encode()).hexdigest()


class ServeConfig(_Strict):
    model: ModelConfig = ModelConfig()
    tenants: dict[str, TenantConfig]
    path: Path | None = None

    def adapters(self) -> dict[str, str]:
        """Each tenant's configured adapter ref; "" for the base model."""
        return {name: tenant.adapter for name, tenant in self.tenants.items()}

    @field_validator("tenants")
    @classmethod
    def _names(cls, tenants: dict[str, TenantConfig]) -> dict[str, TenantConfig]:
        if not tenants:
            raise ValueError("at least one [tenants.NAME] table is needed")
        for name in tenants:
            try:
                check_tenant(name)
            except InvalidTenantError as exc:
                raise ValueError(str(exc)) from None
        return tenants


def load_config(path: Path) -> ServeConfig:
    """Reads and checks the file; relative docs paths are taken from the file's folder."""
    raw = read_toml(path, ConfigError)
    try:
        config = ServeConfig.model_validate({**raw, "path": path})
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problems(exc)}") from None
    tenants = {}
    for name, tenant in config.tenants.items():
        docs = tenant.docs if tenant.docs.is_absolute() else (path.parent / tenant.docs).resolve()
        if not docs.is_dir():
            raise ConfigError(f"{path}: tenants.{name}.docs: {docs} is not a folder")
        tenant.key_sha256(name)  # an unset environment variable fails now, not at the first request
        tenants[name] = tenant.model_copy(update={"docs": docs})
    hashes = [t.key_sha256(n) for n, t in tenants.items()]
    if len(set(hashes)) != len(hashes):
        raise ConfigError(f"{path}: two tenants share one API key")
    return config.model_copy(update={"tenants": tenants})
