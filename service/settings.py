"""Service settings, from RAGSERVE_* environment variables; secrets never live in the config file."""

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ragserve.adapters.validation import AdapterLimits
from ragserve.engine.cpu_placement import parse_cpu_list

__all__ = ["ServiceSettings"]


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAGSERVE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    vllm_url: str | None = None
    vllm_port: int = Field(default=8100, ge=1, le=65535)
    vllm_timeout_s: float = Field(default=120.0, gt=0)
    vllm_dtype: str = "auto"  # bfloat16 on a CPU with native bf16 (1.5x the throughput), else float32
    admin_key: SecretStr | None = None
    max_concurrency: int = Field(default=32, ge=1)
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    readiness_timeout_s: float = Field(default=3.0, gt=0)
    retrieval_timeout_s: float = Field(default=15.0, gt=0)
    max_lora_rank: int = Field(default=AdapterLimits.max_rank, ge=1, le=512)
    adapter_max_bytes: int = Field(default=AdapterLimits.max_bytes, ge=1024)
    # Where `ragserve up` runs the API: "auto" keeps it off the cores of the vLLM it starts on a CPU,
    # "all" leaves it to the scheduler, or a CPU list such as "1,3-5".
    api_cpus: str = "auto"

    @field_validator("api_cpus")
    @classmethod
    def _cpu_list_or_keyword(cls, value: str) -> str:
        if value not in ("auto", "all"):
            parse_cpu_list(value)
        return value

    def adapter_limits(self) -> AdapterLimits:
        return AdapterLimits(self.max_lora_rank, self.adapter_max_bytes)
