"""Settings, from arguments first, then RAGSERVE_* environment variables, then defaults."""

from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_data_dir"]


def default_data_dir() -> Path:
    """The per-user data folder: ~/.local/share/ragserve on Linux."""
    return Path(user_data_dir("ragserve", appauthor=False))


class Settings(BaseSettings):
    """Where data lives and how documents are indexed."""

    model_config = SettingsConfigDict(env_prefix="RAGSERVE_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    qdrant_timeout_s: int = Field(default=10, ge=1)
    collection: str = Field(default="ragserve", pattern=r"^[A-Za-z0-9_-]{1,64}$")

    embedding_model: str = "all-MiniLM-L6-v2"
    embed_batch_size: int = Field(default=64, ge=1, le=4096)
    chunk_tokens: int = Field(default=200, ge=32, le=8192)
    chunk_overlap: int = Field(default=32, ge=0, le=1024)
    max_file_bytes: int = Field(default=20 * 1024 * 1024, ge=1)

    adapters_dir: Path | None = None

    @property
    def qdrant_path(self) -> Path:
        """The embedded Qdrant store, used when no server URL is set."""
        return self.data_dir / "qdrant"

    @property
    def adapters_root(self) -> Path:
        """The adapter registry, `<name>/<version>/`; in the data dir unless RAGSERVE_ADAPTERS_DIR is set."""
        return self.adapters_dir or self.data_dir / "adapters"

    @property
    def models_dir(self) -> Path:
        """Models unpacked or converted from their PyPI packages."""
        return self.data_dir / "models"
