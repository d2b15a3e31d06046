"""Dense embeddings from a sentence-transformers model, loaded offline."""

import os
import threading
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

# Set before transformers is imported: a missing file must fail, never download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from sentence_transformers import SentenceTransformer
from transformers.utils import logging as hf_logging

from ragserve.errors import ModelNotFoundError
from ragserve.ingest.model_packages import resolve_model_dir

__all__ = ["DenseEmbedder", "Embedder"]

_SLICE = 16

# Loading bars and "sequence longer than the model" notes are noise here: the chunker counts tokens itself.
hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


class Embedder(Protocol):
    """What indexing, search and the service's focus need of a dense embedding model."""

    name: str
    dim: int
    max_tokens: int

    def count_tokens(self, text: str) -> int: ...

    def embed_documents(self, texts: list[str]) -> npt.NDArray[np.float32]: ...

    def embed_query(self, text: str) -> list[float]: ...


class DenseEmbedder:
    """Wraps one sentence-transformers model: its name, vector size, tokenizer and token limit."""

    def __init__(self, name: str, model_dir: Path, batch_size: int = 64, device: str | None = None) -> None:
        self.name = name
        self.batch_size = batch_size
        self._model = SentenceTransformer(str(model_dir), device=device, local_files_only=True)
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise ModelNotFoundError(f"{model_dir}: the model does not say its embedding size")
        self.dim: int = dim
        self.tokenizer = self._model.tokenizer
        # The model's own limit includes the [CLS] and [SEP] tokens that tokenize() does not count.
        max_seq_length = self._model.max_seq_length
        if max_seq_length is None:
            raise ModelNotFoundError(f"{model_dir}: the model does not say its maximum sequence length")
        self.max_tokens: int = max_seq_length - 2
        # The fast tokenizer is not safe from two threads at once (a query's embedding beside an upload's
        # indexing failed with "Unable to create tensor"): one call at a time, in slices of `_SLICE` texts,
        # so a query waits for one slice of a long batch at most.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, name_or_path: str, cache: Path, batch_size: int = 64) -> "DenseEmbedder":
        return cls(name_or_path, resolve_model_dir(name_or_path, cache), batch_size)

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return len(self.tokenizer.tokenize(text))

    def embed_documents(self, texts: list[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        for start in range(0, len(texts), _SLICE):
            with self._lock:
                parts.append(
                    self._model.encode(
                        texts[start : start + _SLICE],
                        batch_size=self.batch_size,
                        normalize_embeddings=True,
                        convert_to_numpy=True,
                    )
                )
        return np.asarray(np.concatenate(parts), dtype=np.float32)

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0].tolist()  # type: ignore[no-any-return]
