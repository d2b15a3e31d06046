"""Settings, from arguments first, then RAGSERVE_* environment variables, then defaults: one source for
every part (data, index, service, vLLM, adapters). Secrets never live in the config file."""

from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ragserve.errors import ConfigError
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

    model_config = SettingsConfigDict(env_prefix="RAGSERVE_", extra="ignore", use_attribute_docstrings=True)

    data_dir: Path = Field(default_factory=default_data_dir)
    """Where the store, the models, the adapters and the feedback live. Default: `.data/` in the working
    directory or a folder above it, if ragserve has used it; else the per-user data folder
    (`~/.local/share/ragserve` on Linux). Also `--data-dir` on each command."""
    database_url: SecretStr | None = None
    """The state database (tenants, keys, adapter assignments, feedback): `postgresql://USER@HOST/DB` in
    production; unset: SQLite, `<data dir>/state.db`. Migrated to the newest schema at start."""
    database_password_file: Path | None = None
    """A file holding the database's password (a compose or Kubernetes secret), used when the URL has none."""
    qdrant_url: str | None = None
    """A Qdrant server or cluster, e.g. `http://qdrant:6333`; unset: the embedded store. Also
    `--qdrant-url`."""
    embedded_store: Literal["edge", "local"] = "edge"
    """The store when no URL is set: `edge` (Qdrant Edge, Qdrant's engine in the process) or `local`
    (qdrant-client's pure-Python local mode, whose queries slow down linearly: 10 s for a hybrid query over
    100k chunks, 20 ms on Edge)."""
    qdrant_api_key: SecretStr | None = None
    """The Qdrant server's API key."""
    qdrant_timeout_s: int = Field(default=10, ge=1)
    """How long a call to the Qdrant server may take."""
    collection: str = Field(default="ragserve", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """The collection's name."""
    qdrant_shard_number: int = Field(default=1, ge=1)
    """Shards of a new collection on a server (with custom sharding: of each promoted tenant)."""
    qdrant_replication_factor: int = Field(default=1, ge=1)
    """Copies of each shard, applied when a collection is created on a server."""
    qdrant_write_consistency_factor: int = Field(default=1, ge=1)
    """Copies that must confirm a write (at most the replication factor)."""
    qdrant_custom_sharding: bool = False
    """Tiered multitenancy on a Qdrant server: small tenants share a fallback shard, and `ragserve tenants
    promote` moves a big one to shards of its own."""

    embedding_model: str = "all-MiniLM-L6-v2"
    """A packaged model's name or a local sentence-transformers folder. Changing it rebuilds the index
    beside the live one (blue-green)."""
    embed_batch_size: int = Field(default=64, ge=1, le=4096)
    """Texts per model batch."""
    chunk_tokens: int = Field(default=200, ge=32, le=8192)
    """A chunk's cap in the embedder's tokens (never above the model's own limit)."""
    chunk_overlap: int = Field(default=32, ge=0, le=1024)
    """Tokens shared by neighbouring chunks of one section."""
    max_file_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    """Documents over this size are skipped, and said so."""

    adapters_dir: Path | None = None
    """The adapter registry (`<name>/<version>/`); unset: `<data dir>/adapters`."""
    max_lora_rank: int = Field(default=16, ge=1, le=512)
    """vLLM's `--max-lora-rank`, and the highest rank validation allows."""
    adapter_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    """The largest adapter validation accepts."""

    host: str = "127.0.0.1"
    """The address `ragserve up` serves on (also `--host`)."""
    port: int = Field(default=8000, ge=1, le=65535)
    """The API's port (also `--port`)."""
    vllm_url: str | None = None
    """A vLLM server that already runs; unset: `ragserve up` starts one. Blank counts as unset, so compose
    can hand over to `RAGSERVE_VLLM_URLS`."""
    vllm_api_key: SecretStr | None = None
    """The key vLLM wants on /v1/* (its `VLLM_API_KEY`). When `ragserve up` starts vLLM itself and this is
    unset, a fresh random key is made for each start."""
    vllm_port: int = Field(default=8100, ge=1, le=65535)
    """The port of the vLLM that `ragserve up` starts."""
    vllm_timeout_s: float = Field(default=120.0, gt=0)
    """How long one call to vLLM may take."""
    vllm_dtype: str = "auto"
    """vLLM's `--dtype`. `auto`: bfloat16 on a CPU with native bf16 (1.5x the throughput), else float32."""
    max_loras: int = Field(default=4, ge=1, le=64)
    """vLLM's LoRA slots (`--max-loras`): the adapters one server (one replica) keeps hot; past it, the
    least recently used is unloaded."""
    replicas: int = Field(default=1, ge=1, le=256)
    """vLLM replicas on Ray Serve that `ragserve up` starts (also `--replicas`)."""
    vllm_urls: list[str] = Field(default_factory=list, max_length=256)
    """vLLM servers that already run, a JSON list, one replica each, routed by Ray Serve."""
    ray_address: str | None = None
    """A Ray cluster to join; unset: a local Ray."""
    replica_max_ongoing: int = Field(default=32, ge=1)
    """A replica's requests in flight before Ray Serve routes past it."""
    replica_health_period_s: float = Field(default=2.0, gt=0)
    """How often each replica's health is checked."""
    replica_failover_s: float = Field(default=15.0, gt=0)
    """How long a request that has not yet started is retried on another replica."""
    replica_gpus: float = Field(default=0.0, ge=0)
    """GPUs per replica, for Ray's placement."""
    admin_key: SecretStr | None = None
    """The admin API's bearer key. Unset: the admin routes answer 404. Blank, a placeholder (`changeme`, the
    demo's) or under 16 characters outside the demo: `ragserve up` refuses to start."""
    demo: bool = False
    """Serving the public demo: allows its published keys. Only `make demo` sets it."""
    max_concurrency: int = Field(default=32, ge=1)
    """Requests in flight in the whole service (each tenant's share: `max_concurrency` in its table)."""
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    """The largest request body (413 past it), and WebSocket message (its connection closed, 1009)."""
    body_timeout_s: float = Field(default=10.0, gt=0)
    """The longest wait for the next chunk of a request body (408 past it)."""
    max_connections: int = Field(default=256, ge=1)
    """Open connections; past it uvicorn answers 503."""
    keep_alive_s: int = Field(default=5, ge=1)
    """How long an idle keep-alive connection stays open."""
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    """A request's headers (uvicorn enforces it only with its h11 parser, not with httptools)."""
    feedback_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """Each tenant's stored feedback (`POST /v1/feedback`); past it a post is refused until an operator
    exports the file (`ragserve feedback export`) and moves it away."""
    responses_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """Each tenant's stored responses (the Responses API's `store`, for `previous_response_id`): past it, the
    oldest are deleted to make room, so a tenant can fill neither the database nor another's share."""
    metrics_host: str = "127.0.0.1"
    """The Prometheus listener's address. Metrics name every tenant, so they have a listener of their own,
    never the API's port: loopback by default; in compose, the compose network, its port not published."""
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    """The Prometheus listener's port; 0: any free port."""
    metrics_key: SecretStr | None = None
    """When set, the API's port also answers `GET /metrics`, to `Authorization: Bearer <key>` only."""
    api_docs: bool = True
    """Serve the public OpenAPI schema (`/openapi.json`, `/docs`: the tenants' routes) and the admin API's
    (`/admin/openapi.json`, with the admin key); false serves neither."""
    readiness_timeout_s: float = Field(default=3.0, gt=0)
    """How long `/readyz` waits for each thing it checks (vLLM, the store)."""
    retrieval_timeout_s: float = Field(default=15.0, gt=0)
    """How long a request's retrieval may take."""
    api_cpus: str = "auto"
    """Where `ragserve up` runs the API: `auto` keeps it off the cores of the vLLM it starts on a CPU, `all`
    leaves it to the scheduler, or a CPU list such as `1,3-5`."""

    @field_validator("vllm_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        """Compose sets RAGSERVE_VLLM_URL empty to hand over to RAGSERVE_VLLM_URLS."""
        return value if value and value.strip() else None

    @field_validator("database_url")
    @classmethod
    def _blank_url_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value().strip() else None

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
    def state_url(self) -> str:
        """The state database's URL, with the password file's secret in it where the URL has none."""
        if self.database_url is None:
            return f"sqlite:///{self.data_dir / 'state.db'}"
        url = self.database_url.get_secret_value().strip()
        if self.database_password_file is None:
            return url
        from sqlalchemy.engine import make_url  # only here: settings load in every command

        try:
            password = self.database_password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"RAGSERVE_DATABASE_PASSWORD_FILE: {exc}") from None
        parsed = make_url(url)
        if parsed.password:
            return url
        return parsed.set(password=password).render_as_string(hide_password=False)

    @property
    def documents_dir(self) -> Path:
        """Documents uploaded over HTTP, `<tenant>/<document id>/<name>` (service/library.py)."""
        return self.data_dir / "documents"

    @property
    def models_dir(self) -> Path:
        """Models unpacked or converted from their PyPI packages."""
        return self.data_dir / "models"
