"""BM25 sparse vectors, built locally: Qdrant applies the IDF part at query time (Modifier.IDF)."""

import re
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import snowballstemmer

__all__ = ["Bm25Encoder", "SparseEmbedding"]

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)

# A short English stop list: words that carry no topic, kept out so they do not dilute the term weights.
_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having
    he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
    nor not now of off on once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too under until up very
    was we were what when where which while who whom why will with would you your yours yourself yourselves
    """.split()
)


@dataclass(frozen=True)
class SparseEmbedding:
    indices: list[int]
    values: list[float]


class Bm25Encoder:
    """Term frequencies saturated and length-normalised as in BM25; terms are stemmed, ids are CRC32s."""

    def __init__(self, k1: float = 1.2, b: float = 0.75, avg_len: float = 120.0, language: str = "english"):
        self.k1 = k1
        self.b = b
        self.avg_len = avg_len
        self.language = language
        stemmer = snowballstemmer.stemmer(language)
        self._stem = lru_cache(maxsize=200_000)(stemmer.stemWord)

    @property
    def params(self) -> dict[str, Any]:
        """What the index records: a change here means every document's vector changes."""
        return {
            "k1": self.k1,
            "b": self.b,
            "avg_len": self.avg_len,
            "language": self.language,
            "hash": "crc32",
        }

    def terms(self, text: str) -> list[str]:
        return [self._stem(tok) for tok in _TOKEN.findall(text.lower()) if tok not in _STOPWORDS]

    def encode_document(self, text: str) -> SparseEmbedding:
        terms = self.terms(text)
        counts = Counter(_term_id(term) for term in terms)
        norm = self.k1 * (1 - self.b + self.b * len(terms) / self.avg_len)
        weights = {tid: tf * (self.k1 + 1) / (tf + norm) for tid, tf in counts.items()}
        return _sorted(weights)

    def encode_query(self, text: str) -> SparseEmbedding:
        # Each query term counts once; Qdrant multiplies it by the term's IDF over the collection.
        return _sorted({_term_id(term): 1.0 for term in self.terms(text)})


def _term_id(term: str) -> int:
    return zlib.crc32(term.encode("utf-8"))


def _sorted(weights: dict[int, float]) -> SparseEmbedding:
    ids = sorted(weights)
    return SparseEmbedding(ids, [weights[i] for i in ids])
