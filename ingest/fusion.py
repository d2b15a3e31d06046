"""Reciprocal rank fusion as Qdrant computes it, for a store that hands back the ranked lists apart."""

from collections.abc import Hashable, Sequence
from typing import TypeVar

__all__ = ["DEFAULT_RRF_K", "rrf_scores"]

# Qdrant's default k: `pub const DEFAULT_RRF_K: usize = 2` in qdrant/qdrant,
# lib/segment/src/common/reciprocal_rank_fusion.rs (read at commit 037600e). qdrant-client's local mode uses
# the same (`DEFAULT_RANKING_CONSTANT_K = 2`, qdrant_client/hybrid/fusion.py). Not the paper's 60.
DEFAULT_RRF_K = 2

_K = TypeVar("_K", bound=Hashable)


def rrf_scores(
    rankings: Sequence[Sequence[_K]], k: int = DEFAULT_RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[_K, float]]:
    """Each key's summed RRF score over the rankings, best first.

    Qdrant's `position_score` (same file): `1 / ((position + 1) / weight + k - 1)` with a 0-based position,
    which is `1 / (position + k)` at weight 1; a weight <= 0 contributes nothing. Qdrant sorts with
    `sort_unstable_by`, so the server promises no order among equal scores; here equal scores keep the order
    in which their keys were first seen (the first ranking's first), as qdrant-client's local mode does.
    """
    if weights is not None and len(weights) != len(rankings):
        raise ValueError(f"RRF got {len(weights)} weights for {len(rankings)} rankings")
    scores: dict[_K, float] = {}
    for i, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[i]
        for position, key in enumerate(ranking):
            gain = 1.0 / ((position + 1) / weight + k - 1) if weight > 0 else 0.0
            scores[key] = scores.get(key, 0.0) + gain
    return sorted(scores.items(), key=lambda item: item[1], reverse=True)
