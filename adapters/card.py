"""`card.json`: what an adapter version was trained from, how, and how it scored."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ragserve.errors import AdapterInvalidError
from ragserve.files import write_atomically

__all__ = ["CARD_FILE", "AdapterCard", "DatasetInfo", "TrainingInfo"]

CARD_FILE = "card.json"


class DatasetInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str
    rows: int
    train: int
    eval: int
    seed: int
    eval_fraction: float
    eval_lines: list[int]  # 1-based line numbers of the held-out split, so eval reruns exactly it
    dropped: int = 0


class TrainingInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rank: int
    alpha: int
    dropout: float
    target_modules: list[str]
    epochs: int
    learning_rate: float
    batch_size: int
    max_tokens: int
    precision: str
    device: str
    steps: int
    seconds: float
    final_loss: float


class AdapterCard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_model: str
    dataset: DatasetInfo
    training: TrainingInfo
    eval: dict[str, Any] | None = None
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @classmethod
    def read(cls, folder: Path) -> "AdapterCard | None":
        path = folder / CARD_FILE
        if not path.is_file():
            return None
        try:
            return cls.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            raise AdapterInvalidError(f"{path}: unreadable card: {str(exc).splitlines()[0]}") from exc

    def write(self, folder: Path) -> None:
        write_atomically(folder / CARD_FILE, json.dumps(self.model_dump(), indent=2) + "\n")
