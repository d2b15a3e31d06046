"""The session's embedding model: the real packaged one, remembering each text's vector."""

import numpy as np
import numpy.typing as npt

from ragserve.ingest.embedding import DenseEmbedder

__all__ = ["RememberingEmbedder"]


class RememberingEmbedder(DenseEmbedder):
    """Tests write the same documents again and again, and a text's vector never changes within a session:
    each distinct text is embedded by the real model once, then its vector is reused."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._vectors: dict[str, npt.NDArray[np.float32]] = {}

    def embed_documents(self, texts: list[str]) -> npt.NDArray[np.float32]:
        new = [text for text in dict.fromkeys(texts) if text not in self._vectors]
        if new:
            self._vectors.update(zip(new, super().embed_documents(new), strict=True))
        if not texts:
            return super().embed_documents(texts)
        return np.stack([self._vectors[text] for text in texts])
