"""An adapter's life cycle as library calls: dataset, then train, then card, then publish and validate;
then the eval against prompting on its held-out split, with the report and the scores in its card.

The CLI (`ragserve adapters train | eval`) parses and prints around `train_adapter` and `evaluate_adapter`;
anything else that trains or evaluates an adapter (a GPU job, a script) calls the same functions and gets
the same registry entry.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ragserve.adapters.card import AdapterCard, DatasetInfo, TrainingInfo
from ragserve.adapters.dataset import DatasetReport, Example, load_dataset, split_dataset
from ragserve.adapters.dataset_card import DatasetCard
from ragserve.adapters.evaluation import SETUPS, ChatServer, evaluate
from ragserve.adapters.registry import AdapterRegistry, AdapterVersion, check_safe_name
from ragserve.adapters.report import eval_json, write_report
from ragserve.adapters.swap import LoraServer
from ragserve.adapters.training import TrainConfig, TrainResult, train_lora
from ragserve.adapters.validation import AdapterLimits, BaseModelInfo, validate
from ragserve.chat_tokens import chat_token_ids
from ragserve.errors import AdapterInvalidError, ConfigError, DatasetError

__all__ = [
    "AdapterServer",
    "EvaluatedAdapter",
    "HeldOutSplit",
    "TrainedAdapter",
    "evaluate_adapter",
    "held_out_split",
    "train_adapter",
]


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


class AdapterServer(ChatServer, LoraServer, Protocol):
    """A vLLM server, as the eval needs it: chat, load and unload an adapter, list what it serves."""

    async def served_models(self) -> set[str]: ...


@dataclass(frozen=True)
class HeldOutSplit:
    card: AdapterCard
    dataset: Path
    train: list[Example]
    held_out: list[Example]


@dataclass(frozen=True)
class EvaluatedAdapter:
    result: dict[str, Any]  # per set-up scores and samples, and "meta"
    paths: dict[str, Path]  # the report: json, markdown, chart


def held_out_split(version: AdapterVersion) -> HeldOutSplit:
    """The training split and the held-out split the adapter was trained with, from its card; the dataset
    must be the one it was trained on (same sha256)."""
    card = version.card()
    if card is None:
        raise DatasetError(f"{version.ref} has no card.json, so its held-out split is unknown")
    dataset = Path(card.dataset.path)
    report = load_dataset(dataset, lambda m: 0, 1 << 30)
    if report.sha256 != card.dataset.sha256:
        raise DatasetError(f"{dataset} changed since {version.ref} was trained (its sha256 differs)")
    train_rows, held_out = split_dataset(
        report, card.dataset.eval_fraction, card.dataset.seed, card.dataset.eval_lines
    )
    return HeldOutSplit(card, dataset, train_rows, held_out)


async def evaluate_adapter(
    server: AdapterServer, version: AdapterVersion, split: HeldOutSplit, base_name: str, max_tokens: int
) -> EvaluatedAdapter:
    """The held-out split through base, prompted, few-shot and the adapter on `server`; the adapter is
    loaded for the eval (and unloaded after, unless it was loaded before); the report goes into the
    version's eval/ folder and the summary into its card."""
    served = await server.served_models()
    if base_name not in served:
        raise ConfigError(f"the vLLM server does not serve {base_name}")
    was_loaded = version.served_name in served
    await server.load_lora(version.served_name, version.path)
    try:
        dataset_card = DatasetCard.for_dataset(split.dataset)
        scores = await evaluate(
            server, base_name, version.served_name, split.train, split.held_out, dataset_card, max_tokens
        )
    finally:
        if not was_loaded:
            await server.unload_lora(version.served_name)
    meta = {"adapter": version.ref, "base_model": base_name, "dataset": split.dataset.name,
            "examples": len(split.held_out), "max_tokens": max_tokens}  # fmt: skip
    result = eval_json(scores, meta)
    paths = write_report(version.path / "eval", result)
    summary = {s: {k: v for k, v in result[s].items() if k != "samples"} for s in SETUPS}
    split.card.model_copy(update={"eval": summary}).write(version.path)
    return EvaluatedAdapter(result, paths)
