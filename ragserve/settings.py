"""Settings, from arguments first, then RAGSERVE_* environment variables, then defaults: one source for
every part (data, index, service, vLLM, adapters). Secrets never live in the config file."""

from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ragserve.hardware import parse_cpu_list

__all__ = ["Settings", "default_data_dir"]


# A checkout's own data dir: `make demo`, `make adapters` and `make eval` keep their data there.
_PROJECT_DATA_DIR = ".data"
_DATA_DIR_PARTS = (
    "qdrant-edge",
    "qdrant",
    "models",
    "adapters",
)  # what tells a ragserve data dir from any `.data`


def default_data_dir(start: Path | None = None) -> Path:
    """`.data/` in the working directory or a folder above it, if ragserve has used it (a checkout where
    `make demo` ran: the next command typed there finds the demo's index and adapters); else the per-user
    data folder, ~/.local/share/ragserve on Linux."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / _PROJECT_DATA_DIR
        if any((candidate / part).is_dir() for part in _DATA_DIR_PARTS):
            return candidate
    return Path(user_data_dir("ragserve", appauthor=False))


class Settings(BaseSettings):
    """Where data lives, how documents are indexed, and how the service and its vLLM run."""

    model_config = SettingsConfigDict(env_prefix="RAGSERVE_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    qdrant_url: str | None = None
    # The store when no URL is set: Qdrant Edge (Qdrant's engine in the process), or qdrant-client's local
    # mode, a pure-Python stand-in whose queries slow down linearly (make bench: a hybrid query over 100k
    # chunks takes 10 s there, 20 ms on Edge).
    embedded_store: Literal["edge", "local"] = "edge"
    qdrant_api_key: SecretStr | None = None
    qdrant_timeout_s: int = Field(default=10, ge=1)
    collection: str = Field(default="ragserve", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # A Qdrant cluster: applied when a collection is created (the embedded store ignores them). With custom
    # sharding, small tenants share a fallback shard; `ragserve tenants promote` moves a big one to its own.
    qdrant_shard_number: int = Field(default=1, ge=1)  # with custom sharding: shards per promoted tenant
    qdrant_replication_factor: int = Field(default=1, ge=1)
    qdrant_write_consistency_factor: int = Field(default=1, ge=1)
    qdrant_custom_sharding: bool = False

    embedding_model: str = "all-MiniLM-L6-v2"
    embed_batch_size: int = Field(default=64, ge=1, le=4096)
    chunk_tokens: int = Field(default=200, ge=32, le=8192)
    chunk_overlap: int = Field(default=32, ge=0, le=1024)
    max_file_bytes: int = Field(default=20 * 1024 * 1024, ge=1)

    adapters_dir: Path | None = None
    max_lora_rank: int = Field(default=16, ge=1, le=512)  # vLLM's --max-lora-rank, and what validation allows
    adapter_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)

    # The service (`ragserve up`) and its vLLM.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    vllm_url: str | None = None
    # The key vLLM wants on /v1/* (its VLLM_API_KEY). When `ragserve up` starts vLLM itself and this is unset,
    # a fresh random key is made for each start.
    vllm_api_key: SecretStr | None = None
    vllm_port: int = Field(default=8100, ge=1, le=65535)
    vllm_timeout_s: float = Field(default=120.0, gt=0)
    vllm_dtype: str = "auto"  # bfloat16 on a CPU with native bf16 (1.5x the throughput), else float32
    # vLLM's LoRA slots (--max-loras): the adapters one server (one replica) keeps hot; past it, the LRU goes.
    max_loras: int = Field(default=4, ge=1, le=64)
    # Replicas (engine/replica.py): `ragserve up --replicas N` starts N vLLM servers on Ray Serve; or
    # RAGSERVE_VLLM_URLS (a JSON list) names servers that already run, one replica each. A local Ray, unless
    # RAGSERVE_RAY_ADDRESS names a cluster to join.
    replicas: int = Field(default=1, ge=1, le=256)
    vllm_urls: list[str] = Field(default_factory=list, max_length=256)
    ray_address: str | None = None
    replica_max_ongoing: int = Field(default=32, ge=1)  # a replica's requests before Ray routes past it
    replica_health_period_s: float = Field(default=2.0, gt=0)
    replica_failover_s: float = Field(default=15.0, gt=0)  # how long a request not yet started is retried
    replica_gpus: float = Field(default=0.0, ge=0)  # GPUs per replica, for Ray's placement
    admin_key: SecretStr | None = None
    # Serving the public demo: allows its published keys (service/exposure.py). Only `make demo` sets it.
    demo: bool = False
    max_concurrency: int = Field(default=32, ge=1)
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    body_timeout_s: float = Field(default=10.0, gt=0)  # the longest wait for the next chunk of a request body
    # uvicorn's bounds: open connections (503 past it), idle keep-alive, and a request's headers (h11 only).
    max_connections: int = Field(default=256, ge=1)
    keep_alive_s: int = Field(default=5, ge=1)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    # Each tenant's stored feedback (POST /v1/feedback); past it a post is refused until an operator exports
    # the file (`ragserve feedback export`) and moves it away.
    feedback_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # Prometheus metrics name every tenant, so they have a listener of their own, never the API's port:
    # loopback by default; in compose, every address of the compose network, its port not published.
    # 0: any free port.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    # When set, the API's port also answers GET /metrics, to `Authorization: Bearer <key>` only.
    metrics_key: SecretStr | None = None
    # The public OpenAPI schema (/openapi.json, /docs: the tenants' routes) and the admin API's
    # (/admin/openapi.json, with the admin key); false serves neither.
    api_docs: bool = True
    readiness_timeout_s: float = Field(default=3.0, gt=0)
    retrieval_timeout_s: float = Field(default=15.0, gt=0)
    # Where `ragserve up` runs the API: "auto" keeps it off the cores of the vLLM it starts on a CPU,
    # "all" leaves it to the scheduler, or a CPU list such as "1,3-5".
    api_cpus: str = "auto"

    @field_validator("vllm_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        """Compose sets RAGSERVE_VLLM_URL empty to hand over to RAGSERVE_VLLM_URLS."""
        return value if value and value.strip() else None

    @field_validator("metrics_key")
    @classmethod
    def _blank_key_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        """A blank metrics key would match an empty bearer: it serves no metrics on the API's port."""
        return value if value is not None and value.get_secret_value().strip() else None

    @field_validator("api_cpus")
    @classmethod
    def _cpu_list_or_keyword(cls, value: str) -> str:
        if value not in ("auto", "all"):
            parse_cpu_list(value)
        return value

    @model_validator(mode="after")
    def _cluster_settings_fit(self) -> "Settings":
        if self.qdrant_write_consistency_factor > self.qdrant_replication_factor:
            raise ValueError(
                "RAGSERVE_QDRANT_WRITE_CONSISTENCY_FACTOR cannot exceed RAGSERVE_QDRANT_REPLICATION_FACTOR: "
                "a write cannot be confirmed by more replicas than a shard has"
            )
        if self.qdrant_custom_sharding and not self.qdrant_url:
            raise ValueError(
                "RAGSERVE_QDRANT_CUSTOM_SHARDING needs a Qdrant server (RAGSERVE_QDRANT_URL): "
                "the embedded store has no shards"
            )
        return self

    @property
    def qdrant_path(self) -> Path:
        """The embedded store in qdrant-client's local mode (RAGSERVE_EMBEDDED_STORE=local)."""
        return self.data_dir / "qdrant"

    @property
    def edge_path(self) -> Path:
        """The embedded Qdrant Edge store, the default when no server URL is set."""
        return self.data_dir / "qdrant-edge"

    @property
    def adapters_root(self) -> Path:
        """The adapter registry, `<name>/<version>/`; in the data dir unless RAGSERVE_ADAPTERS_DIR is set."""
        return self.adapters_dir or self.data_dir / "adapters"

    @property
    def feedback_dir(self) -> Path:
        """Feedback on answers, `<tenant>.jsonl`, one record a line (service/feedback/store.py)."""
        return self.data_dir / "feedback"

    @property
    def models_dir(self) -> Path:
        """Models unpacked or converted from their PyPI packages."""
        return self.data_dir / "models"
