"""An adapter's life cycle as library calls: dataset, then train, then card, then publish and validate.

The CLI (`ragserve adapters train`) parses and prints around `train_adapter`; anything else that trains an
adapter (a GPU job, a script) calls the same function and gets the same registry entry.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ragserve.adapters.card import AdapterCard, DatasetInfo, TrainingInfo
from ragserve.adapters.dataset import DatasetReport, load_dataset, split_dataset
from ragserve.adapters.dataset_card import DatasetCard
from ragserve.adapters.registry import AdapterRegistry, AdapterVersion, check_safe_name
from ragserve.adapters.training import TrainConfig, TrainResult, train_lora
from ragserve.adapters.validation import AdapterLimits, BaseModelInfo, validate
from ragserve.chat_tokens import chat_token_ids
from ragserve.errors import AdapterInvalidError

__all__ = ["TrainedAdapter", "train_adapter"]


@dataclass(frozen=True)
class TrainedAdapter:
    version: AdapterVersion
    report: DatasetReport
    result: TrainResult
    train_rows: int
    held_out: int


def train_adapter(
    dataset: Path,
    name: str,
    registry: AdapterRegistry,
    base_name: str,
    base_dir: Path,
    config: TrainConfig,
    limits: AdapterLimits,
    eval_fraction: float = 0.2,
    on_step: Callable[[int, int, float], None] | None = None,
    on_problem: Callable[[str], None] | None = None,
) -> TrainedAdapter:
    """Validate the dataset, hold out a seeded eval split, train, write the card, publish a new version."""
    from transformers import AutoTokenizer

    check_safe_name(name, "name")  # before any work
    if config.rank > limits.max_rank:
        raise AdapterInvalidError(
            f"rank {config.rank} is above the server's --max-lora-rank {limits.max_rank}"
        )
    DatasetCard.for_dataset(dataset)  # a broken card fails now, not after training
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    report = load_dataset(dataset, lambda m: len(chat_token_ids(tokenizer, m)), config.max_tokens)
    train_rows, held_out = split_dataset(report, eval_fraction, config.seed)
    for problem in report.problems:
        if on_problem is not None:
            on_problem(f"{dataset}:{problem.line}: {problem.problem} ({problem.action})")
    staging = registry.staging_dir(name)
    result = train_lora(base_dir, train_rows, config, staging, on_step or (lambda *_: None))
    AdapterCard(
        base_model=base_name,
        dataset=DatasetInfo(
            path=str(dataset.resolve()), sha256=report.sha256, rows=report.lines, train=len(train_rows),
            eval=len(held_out), seed=config.seed, eval_fraction=eval_fraction,
            eval_lines=[e.line for e in held_out], dropped=report.lines - len(report.examples),
        ),
        training=TrainingInfo(
            rank=config.rank, alpha=config.alpha, dropout=config.dropout,
            target_modules=list(config.target_modules), epochs=config.epochs,
            learning_rate=config.learning_rate, batch_size=config.batch_size, max_tokens=config.max_tokens,
            precision=result.precision, device=result.device, steps=result.steps, seconds=result.seconds,
            final_loss=result.final_loss,
        ),
    ).write(staging)  # fmt: skip
    version = registry.publish(name, staging)
    validate(version, BaseModelInfo.read(base_name, base_dir), limits)
    return TrainedAdapter(version, report, result, len(train_rows), len(held_out))
