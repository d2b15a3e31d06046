"""`ragserve.toml`: the base model and the tenants. Unknown keys, missing files, bad values fail at start."""

import hashlib
import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ragserve.adapters.registry import AdapterRef
from ragserve.engine.base_model import BUNDLED_BASE
from ragserve.errors import AdapterInvalidError, ConfigError, InvalidTenantError, validation_problems
from ragserve.files import read_toml
from ragserve.ingest.tenancy import check_tenant
from ragserve.service.prompt import INSTRUCTION

__all__ = [
    "BUNDLED_BASE",
    "SAMPLING_FIELDS",
    "ModelConfig",
    "PromptConfig",
    "ServeConfig",
    "TenantConfig",
    "TenantSettings",
    "load_config",
]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _check_ref(value: str) -> str:
    if value:
        try:
            AdapterRef.parse(value)
        except AdapterInvalidError as exc:
            raise ValueError(str(exc)) from None
    return value


AdapterRefText = Annotated[str, AfterValidator(_check_ref)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class ModelConfig(_Strict):
    """The base model, its context, and its sampling defaults: sent to vLLM for every field the client
    leaves out (a client's own value always wins). None leaves the field to the model's own
    generation_config.json, then to vLLM."""

    base: str = BUNDLED_BASE
    """The bundled default, or a path to a local Hugging Face model folder."""
    max_model_len: Annotated[int, Field(ge=256, le=32768)] = 2048
    """The context the prompt must fit in, counted with the model's tokenizer."""
    max_tokens: Annotated[int, Field(ge=1, le=4096)] = 256
    """The default answer length, when the client sets none."""
    default_adapter: AdapterRefText = ""
    """NAME[@VERSION]: serves every tenant that has no adapter of its own; "" for the base model. The
    bundled "grounding" adapter is there for the bundled base (docs: Answer quality)."""
    tool_call_parser: Annotated[str, Field(pattern=r"^[a-z0-9_]*$")] = "hermes"
    """vLLM's parser of the model's tool calls (`--tool-call-parser`), for `tools`; "" turns tools off."""
    temperature: Annotated[float | None, Field(ge=0, le=2)] = 0.0
    """Sampling default, sent when the client leaves it out."""
    top_p: Annotated[float | None, Field(gt=0, le=1)] = None
    """Sampling default, sent when the client leaves it out."""
    top_k: Annotated[int | None, Field(ge=-1)] = None
    """Sampling default, sent when the client leaves it out."""
    min_p: Annotated[float | None, Field(ge=0, le=1)] = None
    """Sampling default, sent when the client leaves it out."""
    repetition_penalty: Annotated[float | None, Field(gt=0, le=2)] = None
    """Sampling default, sent when the client leaves it out."""
    presence_penalty: Annotated[float | None, Field(ge=-2, le=2)] = None
    """Sampling default, sent when the client leaves it out."""
    frequency_penalty: Annotated[float | None, Field(ge=-2, le=2)] = None
    """Sampling default, sent when the client leaves it out."""

    def sampling(self) -> dict[str, float | int]:
        """The configured sampling defaults, by vLLM's field names."""
        values = {name: getattr(self, name) for name in SAMPLING_FIELDS}
        return {name: value for name, value in values.items() if value is not None}


SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty",
                   "frequency_penalty")  # fmt: skip


class PromptConfig(_Strict):
    """What reaches the prompt and where: the context in the system turn or in the final user turn next to
    the question, the instruction, and how many of the retrieved sentences are kept. The defaults are the
    best the bundled model measured (docs: Answer quality)."""

    context: Literal["user", "system"] = "system"
    """Where the numbered context goes: the system turn, or the final user turn before the question."""
    focus_sentences: Annotated[int, Field(ge=0, le=200)] = 6
    """Keep only the N sentences or lines of the retrieved blocks closest to the question (0: whole
    blocks)."""
    instruction: Annotated[str, Field(min_length=1, max_length=2000)] = INSTRUCTION
    """The instruction under the context."""
    attribute: bool = True
    """When the answer cites no block as [n], cite the block its words come from."""


class TenantSettings(_Strict):
    """How the service answers one tenant: from its `[tenants.NAME]` table, or live from the admin API."""

    system_prompt: Annotated[str, Field(max_length=20_000)] = (
        "You are a helpful support assistant. Answer from the numbered context."
    )
    """The system prompt above the context."""
    adapter: AdapterRefText = ""
    """NAME or NAME@VERSION in the adapter registry; "" for the default adapter, or the base model."""
    k: Annotated[int, Field(ge=0, le=50)] = 4
    """Blocks retrieved per request."""
    max_concurrency: Annotated[int | None, Field(ge=1)] = None
    """This tenant's requests in flight (default: half of `RAGSERVE_MAX_CONCURRENCY` when there are
    several tenants), so one busy tenant cannot take every slot."""
    max_tokens: Annotated[int | None, Field(ge=1)] = None
    """The most tokens one answer may ask for (a larger ask is a 400); default: no cap."""
    on_unsupported: Literal["flag", "refuse", "quote"] = "quote"
    """What an answer the grounding check finds unsupported becomes: "flag" returns it with its grounding,
    "refuse" replies "I don't know.", "quote" replies with the passage that best answers the question,
    verbatim, with its citation."""
    answer_mode: Literal["generate", "quote"] = "generate"
    """`generate`: the model writes the answer (then checked); `quote`: nothing is generated, the answer is
    the passage of the documents that best answers the question, verbatim, or "I don't know." when none
    does."""

    @classmethod
    def of(cls, tenant: "TenantSettings") -> "TenantSettings":
        """Only the settings of a tenant's table (which also holds its key and docs folder)."""
        return cls.model_validate(tenant.model_dump(include=set(cls.model_fields)))


class TenantConfig(TenantSettings):
    """One tenant of the file. Its key may be given plain, as a sha256, or by the name of an environment
    variable; more keys are issued through the admin API."""

    api_key: str | None = None
    """The tenant's key, plain (refused on a non-loopback host); give exactly one of the three."""
    api_key_sha256: str | None = None
    """The key's sha256, 64 hex digits."""
    api_key_env: str | None = None
    """The name of the environment variable that holds the key."""
    docs: Path
    """The tenant's documents folder, relative to the config file."""

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
    prompt: PromptConfig = PromptConfig()
    tenants: dict[str, TenantConfig]
    path: Path | None = None

    def adapters(self) -> dict[str, str]:
        """Each tenant's configured adapter ref, else the default adapter; "" for the base model."""
        return {name: tenant.adapter or self.model.default_adapter for name, tenant in self.tenants.items()}

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
