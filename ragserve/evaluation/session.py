"""One eval run: every set-up asked the same questions, here against a running service (against a stack
started from a config: ragserve.launch.answer_eval)."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragserve.errors import ConfigError
from ragserve.evaluation.qa import QAItem
from ragserve.evaluation.runner import ask_questions, rank_sources
from ragserve.evaluation.scoring import summarize, summarize_retrieval
from ragserve.evaluation.setups import Setup

__all__ = ["EvalRun", "evaluate_service"]


@dataclass(frozen=True)
class EvalRun:
    tenant: str
    qa_file: Path
    items: list[QAItem]
    setups: list[Setup]
    retrieval_only: bool = False
    concurrency: int = 4

    def report(self, metrics: dict[str, Any], results: dict[str, list[Any]]) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "questions": len(self.items),
            "qa_file": str(self.qa_file),
            "mode": "retrieval" if self.retrieval_only else "answers",
            "setups": metrics,
            "results": {name: [r.to_json() for r in rows] for name, rows in results.items()},
        }


def evaluate_service(url: str, key: str, run: EvalRun, on_done: Callable[[], None]) -> dict[str, Any]:
    """Against a running service: set-ups may only change what a request sends."""
    if run.retrieval_only:
        ranks = asyncio.run(rank_sources(url, key, run.items, on_done))
        return run.report({"retrieval": summarize_retrieval(ranks)}, {"retrieval": ranks})
    for setup in run.setups:
        if setup.changes_config:
            raise ConfigError(f"set-up {setup.name} changes the served config; run it with --config")
    results = {
        s.name: asyncio.run(ask_questions(url, key, run.items, s, on_done, run.concurrency))
        for s in run.setups
    }
    return run.report({name: summarize(rows) for name, rows in results.items()}, results)
