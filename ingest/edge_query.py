"""Queries on one Edge shard, answered with qdrant-client's models: nearest neighbours on one named vector,
or reciprocal rank fusion over prefetches of such queries.

Edge has its own RRF (Qdrant's rrf_scoring), but it sorts unstably, so candidates with equal fused scores
would come back in an arbitrary order. Here the prefetches run as one Edge batch and are fused by fusion.py
with the same formula and k, equal scores keeping the order they were first seen in, as local mode does.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import qdrant_edge as edge
from qdrant_client import models as qm
from qdrant_client.http.models import QueryResponse  # qm.QueryResponse is fastembed's

from ragserve.ingest import edge_convert as convert
from ragserve.ingest.fusion import DEFAULT_RRF_K, rrf_scores

__all__ = ["Page", "fused", "nearest", "payload_selector"]

_PREFETCH_LIMIT = 10  # the server's, for a prefetch that names none


@dataclass(frozen=True)
class Page:
    """Which of the ranked points come back, and with what."""

    limit: int
    offset: int
    with_payload: bool | Sequence[str]
    score_threshold: float | None


def nearest(
    shard: edge.EdgeShard, query: Any, using: str | None, flt: qm.Filter | None, page: Page
) -> QueryResponse:
    request = edge.QueryRequest(
        limit=page.limit,
        offset=page.offset,
        query=convert.edge_nearest(query, using),
        filter=convert.edge_filter(flt),
        with_payload=payload_selector(page.with_payload),
        score_threshold=page.score_threshold,
    )
    return QueryResponse(points=[_scored(p, p.score, p.payload) for p in shard.query(request)])


def fused(
    shard: edge.EdgeShard, stages: list[qm.Prefetch], fusion: Any, flt: qm.Filter | None, page: Page
) -> QueryResponse:
    """RRF over the stages' ranked lists; the query's filter applies to every stage, as on the server."""
    k, weights = _rrf_params(fusion)
    requests = []
    for stage in stages:
        if stage.prefetch:
            raise ValueError("the Edge store adapter does not take nested prefetches")
        requests.append(
            edge.QueryRequest(
                limit=stage.limit if stage.limit is not None else _PREFETCH_LIMIT,
                query=convert.edge_nearest(stage.query, stage.using),
                filter=convert.edge_filter(stage.filter, flt),
                score_threshold=stage.score_threshold,
                with_payload=False,
            )
        )
    ranked = shard.query_batch(edge.QueryBatchRequest(requests))
    first_seen: dict[int | str, edge.ScoredPoint] = {}
    for points in ranked:
        for point in points:
            first_seen.setdefault(convert.point_id_out(point.id), point)
    scores = rrf_scores([[convert.point_id_out(p.id) for p in points] for points in ranked], k, weights)
    if page.score_threshold is not None:
        scores = [(i, s) for i, s in scores if s >= page.score_threshold]
    scores = scores[page.offset : page.offset + page.limit]
    payloads = {}
    selected = payload_selector(page.with_payload)
    if selected is not False and scores:
        ids = [first_seen[i].id for i, _ in scores]
        records = shard.retrieve(ids, with_payload=selected, with_vector=False)
        payloads = {convert.point_id_out(r.id): r.payload for r in records}
    return QueryResponse(points=[_scored(first_seen[i], score, payloads.get(i)) for i, score in scores])


def payload_selector(with_payload: Any) -> bool | list[str]:
    if isinstance(with_payload, bool):
        return with_payload
    if isinstance(with_payload, list | tuple) and all(isinstance(f, str) for f in with_payload):
        return list(with_payload)
    raise ValueError(f"the Edge store adapter does not take with_payload={with_payload!r}")


def _rrf_params(fusion: Any) -> tuple[int, list[float] | None]:
    if isinstance(fusion, qm.FusionQuery) and fusion.fusion == qm.Fusion.RRF:
        return DEFAULT_RRF_K, None
    if isinstance(fusion, qm.RrfQuery):
        k = fusion.rrf.k if fusion.rrf.k is not None else DEFAULT_RRF_K
        return k, fusion.rrf.weights
    raise ValueError(f"the Edge store adapter fuses prefetches with RRF only, not {fusion!r}")


def _scored(point: edge.ScoredPoint, score: float, payload: dict[str, Any] | None) -> qm.ScoredPoint:
    return qm.ScoredPoint(
        id=convert.point_id_out(point.id), version=point.version, score=score, payload=payload
    )
